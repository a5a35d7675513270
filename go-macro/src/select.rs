//! `select!` expansion.
//!
//! ```text
//! select! {
//!     recv(rx) -> res => body,
//!     send(tx, value) -> res => body,
//!     default => body,              // or `default(timeout) => body`
//! }
//! ```
//!
//! expands to (roughly):
//!
//! ```text
//! {
//!     let op0 = rx;                 // operands and values: once, in source order
//!     let op1 = tx; let v1 = value;
//!     let mut c0 = recv_case(&op0);
//!     let mut c1 = send_case(&op1, v1);
//!     let sel = select(&mut [&mut c0, &mut c1], has_default, timeout);
//!     match sel {
//!         Some(0) => { let res = c0.into_result(); body }
//!         Some(1) => { let res = c1.into_result(); body }
//!         _ => default body,
//!     }
//! }
//! ```
//!
//! The arm bodies are plain match arms (no closures), so `break`, `continue`, `return` and
//! `?` work in them, and the whole `select!` is an expression.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{braced, parenthesized, token, Expr, Ident, Pat, Token};

enum Kind {
    Recv(Expr),
    Send(Expr, Expr),
}

struct Case {
    kind: Kind,
    pat: Option<Pat>,
    body: Expr,
}

struct Default {
    timeout: Option<Expr>,
    body: Expr,
}

struct Input {
    cases: Vec<Case>,
    default: Option<Default>,
}

fn parse_body(input: ParseStream) -> syn::Result<Expr> {
    let body: Expr = if input.peek(token::Brace) {
        let content;
        let brace = braced!(content in input);
        let stmts = content.call(syn::Block::parse_within)?;
        Expr::Block(syn::ExprBlock {
            attrs: Vec::new(),
            label: None,
            block: syn::Block {
                brace_token: brace,
                stmts,
            },
        })
    } else {
        let e: Expr = input.parse()?;
        if !input.is_empty() && !input.peek(Token![,]) {
            return Err(input.error("expected `,` after a select! arm"));
        }
        e
    };
    if input.peek(Token![,]) {
        input.parse::<Token![,]>()?;
    }
    Ok(body)
}

impl Parse for Input {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut cases = Vec::new();
        let mut default: Option<Default> = None;
        while !input.is_empty() {
            let kw: Ident = input.parse()?;
            match kw.to_string().as_str() {
                "recv" | "send" => {
                    if default.is_some() {
                        return Err(syn::Error::new(
                            kw.span(),
                            "select!: `default` must be the last arm",
                        ));
                    }
                    let content;
                    parenthesized!(content in input);
                    let args: Punctuated<Expr, Token![,]> =
                        content.parse_terminated(Expr::parse, Token![,])?;
                    let mut args: Vec<Expr> = args.into_iter().collect();
                    let kind = if kw == "recv" {
                        if args.len() != 1 {
                            return Err(syn::Error::new(
                                kw.span(),
                                "select!: expected `recv(receiver) -> result => ...`",
                            ));
                        }
                        Kind::Recv(args.remove(0))
                    } else {
                        if args.len() != 2 {
                            return Err(syn::Error::new(
                                kw.span(),
                                "select!: expected `send(sender, value) -> result => ...`",
                            ));
                        }
                        let v = args.remove(1);
                        Kind::Send(args.remove(0), v)
                    };
                    let pat = if input.peek(Token![->]) {
                        input.parse::<Token![->]>()?;
                        Some(Pat::parse_single(input)?)
                    } else {
                        None
                    };
                    input.parse::<Token![=>]>()?;
                    let body = parse_body(input)?;
                    cases.push(Case { kind, pat, body });
                }
                "default" => {
                    if default.is_some() {
                        return Err(syn::Error::new(
                            kw.span(),
                            "select!: only one `default` arm is allowed",
                        ));
                    }
                    let timeout = if input.peek(token::Paren) {
                        let content;
                        parenthesized!(content in input);
                        Some(content.parse::<Expr>()?)
                    } else {
                        None
                    };
                    input.parse::<Token![=>]>()?;
                    let body = parse_body(input)?;
                    default = Some(Default { timeout, body });
                }
                _ => {
                    return Err(syn::Error::new(
                        kw.span(),
                        "select!: expected `recv(..)`, `send(..)` or `default`",
                    ))
                }
            }
        }
        Ok(Input { cases, default })
    }
}

pub(crate) fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: Input = syn::parse2(input)?;
    let p = quote! { ::gort::chan::__private };
    if input.cases.is_empty() {
        return Ok(match input.default {
            None => quote! { #p::block_forever() },
            Some(Default {
                timeout: None,
                body,
            }) => quote! { { #body } },
            Some(Default {
                timeout: Some(t),
                body,
            }) => quote! {{
                ::gort::time::sleep(#t);
                #body
            }},
        });
    }
    let site = Span::mixed_site();
    let mut binds = Vec::new();
    let mut cases = Vec::new();
    let mut refs = Vec::new();
    let mut arms = Vec::new();
    let names: Vec<_> = (0..input.cases.len())
        .map(|i| format_ident!("__gort_case{}", i, span = site))
        .collect();
    for (i, case) in input.cases.iter().enumerate() {
        let others = names
            .iter()
            .enumerate()
            .filter(|&(j, _)| j != i)
            .map(|(_, n)| n);
        let op = format_ident!("__gort_op{}", i, span = site);
        let c = format_ident!("__gort_case{}", i, span = site);
        match &case.kind {
            Kind::Recv(e) => {
                binds.push(quote! { let #op = &(#e); });
                cases.push(quote! { let mut #c = #p::recv_case(#op); });
            }
            Kind::Send(e, v) => {
                let val = format_ident!("__gort_val{}", i, span = site);
                binds.push(quote! { let #op = &(#e); let #val = #v; });
                cases.push(quote! { let mut #c = #p::send_case(#op, #val); });
            }
        }
        refs.push(quote! { &mut #c as &mut dyn #p::SelectCase });
        let pat = match &case.pat {
            Some(p) => quote! { #p },
            None => quote! { _ },
        };
        let body = &case.body;
        let idx = i;
        arms.push(quote! {
            ::core::option::Option::Some(#idx) => {
                let #pat = #c.into_result();
                // End the other cases' borrows of their operands before the body runs.
                #p::end((#(#others,)*));
                #body
            }
        });
    }
    let has_default = input.default.as_ref().is_some_and(|d| d.timeout.is_none());
    let timeout = match input.default.as_ref().and_then(|d| d.timeout.as_ref()) {
        Some(t) => quote! { ::core::option::Option::Some(#t) },
        None => quote! { ::core::option::Option::None },
    };
    let default_arm = match &input.default {
        Some(d) => {
            let body = &d.body;
            quote! { _ => {
                #p::end((#(#names,)*));
                #body
            } }
        }
        None => quote! { _ => ::core::unreachable!("select! without default returned no case") },
    };
    let sel = format_ident!("__gort_sel", span = site);
    let _ = &names;
    Ok(quote! {{
        #(#binds)*
        #(#cases)*
        let #sel = #p::select(&mut [#(#refs),*], #has_default, #timeout);
        match #sel {
            #(#arms)*
            #default_arm
        }
    }})
}
