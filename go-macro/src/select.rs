//! `select!` expansion (in progress).

use proc_macro2::TokenStream;

pub(crate) fn expand(_input: TokenStream) -> syn::Result<TokenStream> {
    Err(syn::Error::new(
        proc_macro2::Span::call_site(),
        "select! is not implemented yet",
    ))
}
