#!/usr/bin/env bash
# Builds the Android library module bindings-mobile/android: native libraries for every ABI into
# src/main/jniLibs (with cargo-ndk), and the Kotlin bindings into src/main/kotlin.
# Needs the Android NDK (ANDROID_NDK_HOME), rustup targets for Android, and cargo-ndk.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -n "${ANDROID_NDK_HOME:-}" ] || { echo "set ANDROID_NDK_HOME to an Android NDK" >&2; exit 1; }
MODULE=bindings-mobile/android
rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android i686-linux-android
command -v cargo-ndk >/dev/null || cargo install cargo-ndk --locked
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 -t x86 -o "$MODULE/src/main/jniLibs" \
  build --release -p medshare-mobile
cargo build --release -p uniffi-bindgen
rm -rf "$MODULE/src/main/kotlin" && mkdir -p "$MODULE/src/main/kotlin"
target/release/uniffi-bindgen generate --library "$MODULE/src/main/jniLibs/arm64-v8a/libmedshare_mobile.so" \
  --language kotlin --out-dir "$MODULE/src/main/kotlin"
echo "Android module ready in $MODULE (add it to your Gradle build: include(\":medshare\"))"
