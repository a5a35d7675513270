fn main() {
    let h = gort::spawn(|| std::panic::panic_any(42u8));
    let e = h.join().unwrap_err();
    println!("is u8: {} is &str: {:?} is String {:?} typeid {:?}", e.is::<u8>(), e.downcast_ref::<&str>(), e.downcast_ref::<String>(), (*e).type_id());
    println!("u8 {:?}", std::any::TypeId::of::<u8>());
}
