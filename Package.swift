// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "VariationAudit",
    products: [
        .executable(name: "varaudit", targets: ["varaudit"]),
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "Checkpoints", targets: ["Checkpoints"]),
        .library(name: "Imaging", targets: ["Imaging"]),
        .library(name: "Networks", targets: ["Networks"]),
        .library(name: "Diffusion", targets: ["Diffusion"]),
        .library(name: "Safety", targets: ["Safety"]),
        .library(name: "Parquet", targets: ["Parquet"]),
        .library(name: "Memorization", targets: ["Memorization"]),
        .library(name: "AuditStore", targets: ["AuditStore"]),
        .library(name: "VariationAudit", targets: ["VariationAudit"]),
        .library(name: "Reports", targets: ["Reports"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
    ],
    targets: [
        // System library over OpenBLAS's cblas.h (Debian: libopenblas-dev).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        // JPEG (libjpeg-turbo) and PNG (libpng) decode/encode to RGB8.
        .target(
            name: "CImageCodecs",
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png")]
        ),
        // C ABI over Debian's static libfaiss.a (which ships no C API).
        .target(
            name: "CFaiss",
            cxxSettings: [.unsafeFlags(["-std=c++17", "-fopenmp"])],
            linkerSettings: [
                .linkedLibrary("faiss"), .linkedLibrary("gomp"), .linkedLibrary("lapack"),
                .linkedLibrary("openblas"), .linkedLibrary("stdc++"),
            ]
        ),
        // Parquet page codecs: snappy (libsnappy), zstd (libzstd) and gzip (zlib), into caller buffers.
        .target(
            name: "CParquetCodecs",
            linkerSettings: [.linkedLibrary("snappy"), .linkedLibrary("zstd"), .linkedLibrary("z")]
        ),
        // float16 <-> float32 arrays (F16C when the CPU has it, checked at run time, a portable loop otherwise),
        // the GEMM over weights packed at load (AVX-512, AVX2 + FMA or portable, chosen at run time) and the
        // allocator setting for tensors.
        .target(
            name: "CKernels", cSettings: [.unsafeFlags(["-O2", "-ffp-contract=off"])],
            linkerSettings: [.linkedLibrary("m")]),
        .target(
            name: "Tensors",
            dependencies: ["CBLAS", "CKernels"],
            // The kernels are optimized in debug builds too: the tests run whole (small) pipelines.
            swiftSettings: [
                .unsafeFlags(["-Ounchecked"], .when(configuration: .release)),
                .unsafeFlags(["-O"], .when(configuration: .debug)),
            ]
        ),
        .target(name: "Checkpoints", dependencies: ["Tensors"]),
        // Parquet files as pyarrow and pandas write them (clip-retrieval metadata): footer, row groups, columns.
        .target(name: "Parquet", dependencies: ["CParquetCodecs", "Checkpoints"]),
        .target(name: "Imaging", dependencies: ["CImageCodecs", "Tensors", "Checkpoints"]),
        .target(name: "Networks", dependencies: ["Tensors", "Checkpoints"]),
        .target(name: "Diffusion", dependencies: ["Tensors", "Checkpoints", "Networks", "Imaging"]),
        .target(name: "Safety", dependencies: ["Tensors", "Checkpoints", "Networks", "Imaging"]),
        .target(
            name: "Memorization",
            dependencies: [
                "Tensors", "Checkpoints", "Imaging", "CFaiss", "Parquet",
                .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // The SQLite audit store: runs, inputs, variations, scores, neighbours, flags, errors; queries and merges.
        .target(
            name: "AuditStore", dependencies: ["Tensors", "Checkpoints", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // The HTML audit report, rendered from the store through an escaping template engine.
        .target(
            name: "Reports",
            dependencies: [
                "AuditStore", "Checkpoints", "Imaging", .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The audit itself: model folders, generation and audit runs writing the store (the library product).
        .target(
            name: "VariationAudit",
            dependencies: [
                "Tensors", "Checkpoints", "Imaging", "Networks", "Diffusion", "Safety", "Memorization", "AuditStore",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "varaudit",
            dependencies: [
                "Tensors", "Checkpoints", "Imaging", "Networks", "Diffusion", "Safety", "Memorization",
                "AuditStore", "VariationAudit", "Reports", "Parquet",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "TestSupport",
            dependencies: ["Tensors", "Checkpoints"],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging", "TestSupport"]),
        .testTarget(name: "NetworksTests", dependencies: ["Networks", "Imaging", "TestSupport"]),
        .testTarget(name: "DiffusionTests", dependencies: ["Diffusion", "Networks", "Imaging", "TestSupport"]),
        .testTarget(name: "SafetyTests", dependencies: ["Safety", "Networks", "Imaging", "TestSupport"]),
        .testTarget(name: "ParquetTests", dependencies: ["Parquet", "TestSupport"]),
        .testTarget(name: "MemorizationTests", dependencies: ["Memorization", "Imaging", "TestSupport"]),
        .testTarget(name: "AuditStoreTests", dependencies: ["AuditStore", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "AuditStore", "TestSupport"]),
        .testTarget(
            name: "VariationAuditTests",
            dependencies: ["VariationAudit", "AuditStore", "Memorization", "Imaging", "TestSupport"]
        ),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "varaudit", "AuditStore"]),
    ],
    swiftLanguageModes: [.v6]
)
