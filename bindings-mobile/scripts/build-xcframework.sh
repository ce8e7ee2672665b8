#!/usr/bin/env bash
# Builds MedShare.xcframework for iOS devices and simulators (arm64 + x86_64), and the Swift
# sources, for the Swift package in bindings-mobile/Package.swift.
# Runs on macOS with Xcode and rustup (this repository's CI machines have no Swift toolchain:
# there the Swift sources are generated and checked, not compiled).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname)" = Darwin ] || { echo "build-xcframework.sh needs macOS with Xcode" >&2; exit 1; }
OUT=bindings-mobile/apple
TARGETS="aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios"
rustup target add $TARGETS
for t in $TARGETS; do
  cargo build --release -p medshare-mobile --target "$t"
done
cargo build --release -p uniffi-bindgen
rm -rf "$OUT" && mkdir -p "$OUT/Sources/MedShare" "$OUT/headers"
target/release/uniffi-bindgen generate --library target/aarch64-apple-ios/release/libmedshare_mobile.a \
  --language swift --out-dir "$OUT/gen"
mv "$OUT/gen/MedShare.swift" "$OUT/Sources/MedShare/"
mv "$OUT/gen/MedShareFFI.h" "$OUT/headers/"
# The framework module must be called module.modulemap inside the headers directory.
mv "$OUT/gen/MedShareFFI.modulemap" "$OUT/headers/module.modulemap"
# One fat simulator library (arm64 + x86_64), then the XCFramework.
mkdir -p "$OUT/sim"
lipo -create target/aarch64-apple-ios-sim/release/libmedshare_mobile.a \
  target/x86_64-apple-ios/release/libmedshare_mobile.a -output "$OUT/sim/libmedshare_mobile.a"
xcodebuild -create-xcframework \
  -library target/aarch64-apple-ios/release/libmedshare_mobile.a -headers "$OUT/headers" \
  -library "$OUT/sim/libmedshare_mobile.a" -headers "$OUT/headers" \
  -output "$OUT/MedShareFFI.xcframework"
rm -rf "$OUT/gen" "$OUT/sim"
echo "built $OUT/MedShareFFI.xcframework and $OUT/Sources/MedShare/MedShare.swift"
