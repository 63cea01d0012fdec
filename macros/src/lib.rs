//! `#[coring::main]` and `#[coring::test]`: run an `async fn` on a fresh coring runtime.
//!
//! Options: `entries = N` (submission queue entries per ring), `sqpoll = MS` (SQPOLL with the
//! given idle time in milliseconds), `worker_threads = N` (the function runs on worker 0;
//! `coring::spawn_on` reaches the others), `driver = "auto" | "io_uring" | "epoll"` (the
//! backend policy; see `coring::runtime::DriverPolicy`) and `tokio_bridge = true` (a tokio
//! runtime entered on every worker, with coring's `tokio-bridge` cargo feature; see
//! `coring::runtime::Builder::tokio_bridge`). Misuse (a function that is not `async`, an
//! unknown option, a value of the wrong kind) is a compile error that says what is wrong.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ItemFn, Lit, Meta, MetaNameValue, Token};

/// Runs `async fn main` on a coring runtime.
///
/// ```ignore
/// #[coring::main(entries = 256)]
/// async fn main() -> std::io::Result<()> {
///     Ok(())
/// }
/// ```
#[proc_macro_attribute]
pub fn main(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into(), Kind::Main)
        .unwrap_or_else(|error| {
            // Keep a `main` so the error above is the only one reported.
            let error = error.into_compile_error();
            quote!(#error fn main() {})
        })
        .into()
}

/// Runs an `async fn` test on its own coring runtime.
///
/// ```ignore
/// #[coring::test]
/// async fn it_works() {
///     coring::task::yield_now().await;
/// }
/// ```
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(args.into(), item.into(), Kind::Test)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Main,
    Test,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Main => "coring::main",
            Kind::Test => "coring::test",
        }
    }
}

fn example_value(name: &str) -> &'static str {
    match name {
        "sqpoll" => "10",
        "worker_threads" => "2",
        _ => "256",
    }
}

fn int_option(nv: &MetaNameValue, name: &str) -> syn::Result<u64> {
    match &nv.value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<u64>(),
        other => Err(syn::Error::new(
            other.span(),
            format!(
                "`{name}` takes an integer literal, as in `{name} = {}`",
                example_value(name)
            ),
        )),
    }
}

fn expand(args: TokenStream2, item: TokenStream2, kind: Kind) -> syn::Result<TokenStream2> {
    let mut function: ItemFn = syn::parse2(item)?;
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut options = Vec::new();
    for meta in metas {
        match meta {
            Meta::NameValue(nv) => options.push(nv),
            other => {
                let name = other
                    .path()
                    .get_ident()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "option".into());
                return Err(syn::Error::new(
                    other.span(),
                    format!(
                        "`{name}` needs a value, as in `{name} = {}`; #[{}] takes `entries = N`, \
                         `sqpoll = IDLE_MS`, `worker_threads = N`, `driver = \"auto\"` and `tokio_bridge = true`",
                        example_value(&name),
                        kind.name()
                    ),
                ));
            }
        }
    }

    let mut builder = quote!(::coring::runtime::Runtime::builder());
    for nv in &options {
        let name = nv
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match name.as_str() {
            "entries" => {
                let n = int_option(nv, "entries")?;
                let n = u32::try_from(n)
                    .map_err(|_| syn::Error::new(nv.value.span(), "`entries` must fit in a u32"))?;
                builder = quote!(#builder.entries(#n));
            }
            "worker_threads" => {
                let n = int_option(nv, "worker_threads")? as usize;
                if n == 0 {
                    return Err(syn::Error::new(nv.value.span(), "`worker_threads` must be at least 1"));
                }
                builder = quote!(#builder.worker_threads(#n));
            }
            "driver" => {
                let policy = match &nv.value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) => s.value(),
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "`driver` takes a string: \"auto\", \"io_uring\" or \"epoll\"",
                        ))
                    }
                };
                let variant = match policy.as_str() {
                    "auto" => quote!(Auto),
                    "io_uring" | "uring" => quote!(IoUring),
                    "epoll" => quote!(Epoll),
                    _ => {
                        return Err(syn::Error::new(
                            nv.value.span(),
                            "unknown driver; expected \"auto\", \"io_uring\" or \"epoll\"",
                        ))
                    }
                };
                builder = quote!(#builder.driver(::coring::runtime::DriverPolicy::#variant));
            }
            "sqpoll" => {
                let ms = int_option(nv, "sqpoll")?;
                builder = quote!(#builder.sqpoll(::std::time::Duration::from_millis(#ms)));
            }
            "tokio_bridge" => {
                let enabled = match &nv.value {
                    Expr::Lit(ExprLit {
                        lit: Lit::Bool(b), ..
                    }) => b.value,
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "`tokio_bridge` takes `true` or `false` (and the `tokio-bridge` cargo feature of coring)",
                        ))
                    }
                };
                // `false` adds nothing, so it compiles without the cargo feature too.
                if enabled {
                    builder = quote!(#builder.tokio_bridge(true));
                }
            }
            _ => {
                return Err(syn::Error::new(
                    nv.path.span(),
                    format!(
                        "unknown option for #[{}]; expected `entries = N`, `sqpoll = IDLE_MS`, `worker_threads = N`, `driver = \"auto\"|\"io_uring\"|\"epoll\"` or `tokio_bridge = true`",
                        kind.name()
                    ),
                ))
            }
        }
    }

    if function.sig.asyncness.take().is_none() {
        return Err(syn::Error::new(
            function.sig.fn_token.span(),
            format!("#[{}] needs an `async fn`", kind.name()),
        ));
    }
    if kind == Kind::Main && function.sig.ident != "main" && !function.sig.inputs.is_empty() {
        return Err(syn::Error::new(
            function.sig.inputs.span(),
            "#[coring::main] functions take no arguments",
        ));
    }
    if kind == Kind::Test && !function.sig.inputs.is_empty() {
        return Err(syn::Error::new(
            function.sig.inputs.span(),
            "#[coring::test] functions take no arguments",
        ));
    }

    let body = &function.block;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    let start = match kind {
        Kind::Main => quote_spanned! {Span::call_site()=>
            let runtime = match #builder.build() {
                ::std::result::Result::Ok(runtime) => runtime,
                ::std::result::Result::Err(error) => {
                    ::std::eprintln!("{}", error);
                    ::std::process::exit(1);
                }
            };
        },
        Kind::Test => quote_spanned! {Span::call_site()=>
            let runtime = #builder
                .build()
                .expect("coring::test: could not start the runtime");
        },
    };
    let test_attr = (kind == Kind::Test).then(|| quote!(#[::core::prelude::v1::test]));
    Ok(quote! {
        #test_attr
        #(#attrs)*
        #vis #sig {
            #start
            runtime.block_on(async move #body)
        }
    })
}
