// swift-tools-version:5.9
// The MedShare Swift package. Build the binary target first on macOS:
//   bindings-mobile/scripts/build-xcframework.sh
import PackageDescription

let package = Package(
    name: "MedShare",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "MedShare", targets: ["MedShare"]),
    ],
    targets: [
        .binaryTarget(name: "MedShareFFI", path: "apple/MedShareFFI.xcframework"),
        .target(name: "MedShare", dependencies: ["MedShareFFI"], path: "apple/Sources/MedShare"),
    ]
)
