// swift-tools-version:6.0
import PackageDescription

// Targets in dependency order (see ../shared/spec/product.md, "Architecture"): lower targets never
// import higher ones, and every target lists each module it imports (check: `grep -h '^import' Sources/<T>/*.swift`).
//   Kernels      raw-pointer loops, oneDNN and OpenBLAS calls; knows no Tensor
//   Tensors      Tensor (storage reachable only through scoped `withUnsafe…` closures), RNG, safetensors
//   NN           layers, losses, optimizers
//   Plotting     PNG charts (libpng); knows no model
//   Quantization quantizers, QConv2d/QLinear, quantizer curves as data (their PNG is drawn by the CLI)
//   Models, Datasets, Training (trainer, run records, the training-step benchmark)
//   Benchmarks   timing harnesses for `sqakd bench conv|layers|optimizer|loader`; nothing else imports it
//   Bench        suites, sweeps, result store, report
//   sqakd        the command line
// Kernels (raw-pointer loops) drop integer-overflow checks; everything else keeps -O's checks so that its
// preconditions stay live.
let kernelFlags: [SwiftSetting] = [.unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release))]
let optimize: [SwiftSetting] = []

let package = Package(
    name: "SQAKDBench",
    platforms: [.macOS(.v13)],
    products: [.executable(name: "sqakd", targets: ["sqakd"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    ],
    targets: [
        // C shims for Debian's libraries.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib"),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng"),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG", pkgConfig: "libturbojpeg"),
        .systemLibrary(name: "CSystem", path: "Sources/CSystem"),

        .target(name: "Kernels", dependencies: ["CDNNL", "CBLAS"], swiftSettings: kernelFlags),
        .target(name: "Tensors", dependencies: ["Kernels"], swiftSettings: optimize),
        .target(name: "NN", dependencies: ["Tensors", "Kernels"], swiftSettings: optimize),
        .target(name: "Plotting", dependencies: ["CPNG"], swiftSettings: optimize),
        .target(name: "Quantization", dependencies: ["NN", "Tensors", "Kernels"], swiftSettings: optimize),
        .target(name: "Models", dependencies: ["NN", "Quantization", "Tensors"], swiftSettings: optimize),
        .target(name: "Datasets", dependencies: ["Tensors", "CZlib", "CTurboJPEG"], swiftSettings: optimize),
        .target(name: "Distillation", dependencies: ["NN", "Tensors", "Kernels"], swiftSettings: optimize),
        .target(name: "Training", dependencies: ["NN", "Quantization", "Models", "Datasets", "Distillation", "Tensors", "Kernels"],
                swiftSettings: optimize),
        .target(name: "Benchmarks", dependencies: ["Kernels", "Tensors", "NN", "Datasets"], swiftSettings: optimize),
        .target(name: "Bench", dependencies: ["Training", "Plotting", "Quantization", "Models", "Datasets", "Tensors",
                                              .product(name: "Yams", package: "Yams")],
                swiftSettings: optimize),
        .executableTarget(
            name: "sqakd",
            dependencies: ["Bench", "Benchmarks", "Training", "Datasets", "Models", "NN", "Quantization", "Kernels", "Plotting",
                           "CSystem", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: optimize),

        // Test helpers shared by the test targets: finite-difference gradient check, `expectClose`.
        .target(name: "TestSupport", dependencies: ["NN", "Tensors"], path: "Tests/TestSupport"),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "Tensors", "TestSupport"], resources: [.copy("Golden")]),
        .testTarget(name: "NNTests", dependencies: ["NN", "Tensors", "Kernels", "TestSupport"], resources: [.copy("Golden")]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Tensors", "CZlib", "TestSupport"], resources: [.copy("Golden")]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "NN", "Tensors", "Kernels", "TestSupport"], resources: [.copy("Golden")]),
        .testTarget(name: "QuantizationTests", dependencies: ["Quantization", "Models", "NN", "Tensors", "Kernels", "TestSupport"],
                    resources: [.copy("Golden")]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Distillation", "Datasets", "NN", "Tensors", "Kernels", "TestSupport"], resources: [.copy("Golden")]),
        .testTarget(name: "DistillationTests", dependencies: ["Distillation", "NN", "Tensors", "TestSupport"], resources: [.copy("Golden")]),
        .testTarget(name: "PlottingTests", dependencies: ["Plotting"]),
        // Depends on the executable so that `swift test` builds the `sqakd` the sweep tests launch.
        .testTarget(name: "BenchTests", dependencies: ["Bench", "Training", "Plotting", "sqakd", "TestSupport"]),
    ],
    // Swift 5 mode: the engine shares raw buffers across worker threads by design (fixed, disjoint chunks).
    swiftLanguageModes: [.v5]
)
