//! zero-io's Rust staticlib: quiche's C API (`quiche_*`, feature `ffi`) and the BoringSSL it
//! links, packaged as one archive for the addon. Nothing here is called from Rust; the crate
//! exists so that exactly one Rust runtime (std, allocator shims, panic handler) reaches the link.

pub use quiche;
// nghttp2's C library, bundled into this archive for native/proto/http2 (called from C++ only).
pub use libnghttp2_sys;
// Content codings for native/proto/compress (called from C++ only): zlib-ng's native zng_ API,
// brotli's encoder, zstd.
pub use brotlic_sys;
pub use libz_ng_sys;
pub use zstd_sys;
