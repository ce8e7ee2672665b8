//! `uniffi-bindgen`, built from the same uniffi version as the bindings it generates.
fn main() {
    uniffi::uniffi_bindgen_main()
}
