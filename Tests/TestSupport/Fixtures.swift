import Foundation
import Checkpoints
import Tensors

/// Locates committed reference data under `Tests/Fixtures/`.
public enum Fixtures {
    /// `Tests/Fixtures` in the source tree.
    public static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // TestSupport
        .deletingLastPathComponent()  // Tests
        .appendingPathComponent("Fixtures")

    /// A file under `Tests/Fixtures/`.
    public static func url(_ relativePath: String) -> URL {
        directory.appendingPathComponent(relativePath)
    }
}

/// Largest absolute difference between two equally sized arrays (`.infinity` on a size mismatch).
public func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count else { return .infinity }
    var worst: Float = 0
    for i in a.indices {
        let d = abs(a[i] - b[i])
        if d.isNaN { return .infinity }
        worst = max(worst, d)
    }
    return worst
}

/// Largest `|a - b| / max(|b|, floor)` over elements: relative error against reference `b`,
/// with `floor` (default: 1e-2 × max |b|) so that near-zero reference values do not dominate.
public func maxRelativeError(_ a: [Float], reference b: [Float], floor: Float? = nil) -> Float {
    guard a.count == b.count else { return .infinity }
    let scale = floor ?? max(b.map { abs($0) }.max() ?? 0, 1e-12) * 1e-2
    var worst: Float = 0
    for i in a.indices {
        let d = abs(a[i] - b[i]) / max(abs(b[i]), scale)
        if d.isNaN { return .infinity }
        worst = max(worst, d)
    }
    return worst
}

extension Fixtures {
    /// Opens a committed safetensors fixture (reference tensors written by `tools/fixtures/`).
    public static func tensors(_ relativePath: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(url: url(relativePath))
    }
}

/// Asserts-friendly summary of how far `actual` is from the reference `expected` (shape must match).
public func relativeError(_ actual: Tensor, _ expected: Tensor, floor: Float? = nil) -> Float {
    guard actual.shape == expected.shape else { return .infinity }
    return maxRelativeError(actual.scalars, reference: expected.scalars, floor: floor)
}

/// Runs the built `varaudit` tool and captures its output.
public struct ToolRun: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

extension Fixtures {
    /// The `varaudit` executable next to the test bundle in the build products folder.
    public static var tool: URL {
        var dir = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("varaudit")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir.deleteLastPathComponent()
        }
        return Bundle.main.bundleURL.appendingPathComponent("varaudit")
    }

    /// Runs `varaudit arguments...` to completion, with `environment` added to this process's.
    public static func runTool(_ arguments: [String], environment: [String: String] = [:]) throws -> ToolRun {
        let process = Process()
        process.executableURL = tool
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ToolRun(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A fresh empty temporary directory.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("varaudit-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
