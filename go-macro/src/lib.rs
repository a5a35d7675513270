//! Procedural macros for gort: `go!`, `select!`, `#[gort::main]`, `#[gort::test]`.
//!
//! Use them through the `gort` crate (`gort::go!`, ...), which re-exports them; the
//! expansions name `::gort`.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::{format_ident, quote, ToTokens};
use syn::{parse_macro_input, AttrStyle, Attribute, Expr, ItemFn, ReturnType};

mod select;

/// Spawns a goroutine, Go style: `go!(f(a, b))`, `go!(obj.m(a))`, `go!(move || ...)`.
///
/// As in Go, the function value, the receiver and the arguments are evaluated now, in the
/// calling goroutine; only the call runs in the new goroutine. Returns a `gort::JoinHandle`.
#[proc_macro]
pub fn go(input: TokenStream) -> TokenStream {
    let expr = parse_macro_input!(input as Expr);
    expand_go(expr)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

fn expand_go(expr: Expr) -> syn::Result<proc_macro2::TokenStream> {
    match expr {
        Expr::Closure(c) => Ok(quote! { ::gort::spawn(#c) }),
        Expr::Paren(p) => expand_go(*p.expr),
        Expr::Call(call) => {
            let names: Vec<_> = (0..call.args.len())
                .map(|i| format_ident!("__go_arg{}", i))
                .collect();
            let args = call.args.iter();
            let mut func = &*call.func;
            while let Expr::Paren(p) = func {
                func = &p.expr;
            }
            let (bind_f, f) = match func {
                // A path (function item, associated function) is not a runtime value worth
                // binding, and binding it would lose generic inference from the arguments.
                Expr::Path(p) => (quote! {}, p.to_token_stream()),
                other => (quote! { let __go_f = #other; }, quote! { __go_f }),
            };
            Ok(quote! {{
                #bind_f
                #( let #names = #args; )*
                ::gort::spawn(move || #f( #(#names),* ))
            }})
        }
        Expr::MethodCall(mc) => {
            let names: Vec<_> = (0..mc.args.len())
                .map(|i| format_ident!("__go_arg{}", i))
                .collect();
            let receiver = &mc.receiver;
            let method = &mc.method;
            let turbofish = &mc.turbofish;
            let args = mc.args.iter();
            Ok(quote! {{
                let __go_recv = #receiver;
                #( let #names = #args; )*
                ::gort::spawn(move || __go_recv.#method #turbofish ( #(#names),* ))
            }})
        }
        other => Err(syn::Error::new_spanned(
            other,
            "go! accepts a function call `go!(f(a, b))`, a method call `go!(x.m(a))` \
             or a closure `go!(move || ...)`",
        )),
    }
}

/// Go's `select`: waits on several channel operations and completes exactly one.
///
/// ```ignore
/// gort::select! {
///     recv(rx) -> res => { ... },        // res: Result<T, RecvError>
///     send(tx, value) -> res => { ... }, // res: Result<(), SendError<T>>
///     recv(gort::time::after(d)) -> _ => { ... },
///     default => { ... },                // optional; or `default(timeout) => ...`
/// }
/// ```
///
/// - Operands may be a `Receiver`/`Sender`, a reference to one, or an `Option` of either:
///   `None` turns the case off (Go's nil channel). They are borrowed, so a select can run in
///   a loop without moving its channels.
/// - Operands and send values are evaluated once, in source order, when the select starts,
///   whichever case is then chosen.
/// - Among ready cases the choice is uniformly random; `default` runs only if no case is
///   ready. Without `default` the select parks once, registered on every case, until one
///   completes. `default(d)` waits at most `d`, then runs its arm.
/// - A `recv` on a closed channel is ready with `Err(RecvError)`; a `send` on a closed
///   channel, or one whose every Receiver is gone, is ready with `Err(SendError(value))`.
/// - A select never pairs its own send with its own receive. `select! {}` blocks for ever.
/// - It is an expression; `break`, `continue`, `return` and `?` work in arms (they are not
///   closures). `-> res` may be omitted (`recv(rx) => ...`).
#[proc_macro]
pub fn select(input: TokenStream) -> TokenStream {
    select::expand(input.into())
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// Runs `fn main` as the main goroutine on the gort runtime and waits for it.
///
/// `main` may return anything `std::process::Termination` accepts (such as
/// `Result<(), E>`). When it returns, the process exits, abandoning other goroutines, as in Go.
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    let f = parse_macro_input!(item as ItemFn);
    if !args.is_empty() {
        return syn::Error::new(Span::call_site(), "#[gort::main] takes no arguments")
            .to_compile_error()
            .into();
    }
    if let Err(e) = check_plain_fn(&f, "#[gort::main]") {
        return e.to_compile_error().into();
    }
    let attrs = outer_attrs(&f);
    let vis = &f.vis;
    let name = &f.sig.ident;
    let body = &f.block;
    let ret = match &f.sig.output {
        ReturnType::Default => quote! { () },
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    };
    quote! {
        #(#attrs)*
        #vis fn #name() -> ::std::process::ExitCode {
            ::gort::__private::run_main(move || -> #ret #body)
        }
    }
    .into()
}

/// Runs a test as a goroutine on the gort runtime; use it instead of `#[test]`.
///
/// Works with `#[should_panic]` and `#[ignore]`. A test that does not finish within
/// `GORT_TEST_TIMEOUT` seconds (default 300) fails, with a runtime dump.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let f = parse_macro_input!(item as ItemFn);
    if !args.is_empty() {
        return syn::Error::new(Span::call_site(), "#[gort::test] takes no arguments")
            .to_compile_error()
            .into();
    }
    if let Err(e) = check_plain_fn(&f, "#[gort::test]") {
        return e.to_compile_error().into();
    }
    let attrs = outer_attrs(&f);
    let vis = &f.vis;
    let name = &f.sig.ident;
    let body = &f.block;
    let label = quote! { concat!(module_path!(), "::", stringify!(#name)) };
    match &f.sig.output {
        ReturnType::Default => quote! {
            #[::core::prelude::v1::test]
            #(#attrs)*
            #vis fn #name() {
                    ::gort::__private::run_test(#label, move || #body)
            }
        },
        ReturnType::Type(_, ty) => quote! {
            #[::core::prelude::v1::test]
            #(#attrs)*
            #vis fn #name() -> ::std::process::ExitCode {
                    ::gort::__private::run_test_report(#label, move || -> #ty #body)
            }
        },
    }
    .into()
}

/// The function's attributes, all in outer form. syn collects the inner attributes that open
/// its body (`#![..]`, `//!`) in `attrs` too, after the outer ones; printed as they are,
/// before the generated `fn`, they would not compile. An inner attribute of a function
/// applies to the function, exactly as the same attribute in outer form does, so they are
/// turned outer and kept on the generated function, in their order (and the item does not
/// mix both styles, which clippy flags).
fn outer_attrs(f: &ItemFn) -> Vec<Attribute> {
    f.attrs
        .iter()
        .cloned()
        .map(|mut a| {
            a.style = AttrStyle::Outer;
            a
        })
        .collect()
}

fn check_plain_fn(f: &ItemFn, what: &str) -> syn::Result<()> {
    if let Some(a) = &f.sig.asyncness {
        return Err(syn::Error::new_spanned(
            a,
            format!(
                "{what} goes on a plain fn: gort has no async; blocking calls park the goroutine"
            ),
        ));
    }
    if !f.sig.inputs.is_empty() || !f.sig.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &f.sig,
            format!("{what} goes on a fn without parameters or generics"),
        ));
    }
    Ok(())
}
