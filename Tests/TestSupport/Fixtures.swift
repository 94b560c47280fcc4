import Checkpoints
import Foundation
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

    /// A copy of the pipeline fixture `name` at `root`: every entry of the fixture folder symlinked, except
    /// `component`, which is an empty folder for the caller to fill (a second checkpoint, a patched config, an
    /// fp16 variant). Returns `root`.
    @discardableResult
    public static func pipelineCopy(_ name: String = "pipeline/tiny-a", at root: URL, replacing component: String)
        throws -> URL
    {
        let fm = FileManager.default
        let source = url(name)
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        for entry in try fm.contentsOfDirectory(atPath: source.path) where entry != component {
            try fm.createSymbolicLink(
                at: root.appendingPathComponent(entry), withDestinationURL: source.appendingPathComponent(entry))
        }
        try fm.createDirectory(at: root.appendingPathComponent(component), withIntermediateDirectories: true)
        return root
    }

    /// A fresh empty temporary directory.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("varaudit-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Debian's headless chromium, for tests that render a page as a user's browser would.
public enum Browser {
    /// The chromium executable on `PATH` (`chromium`, `chromium-browser` or `google-chrome`), if any.
    public static var executable: String? {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
                let path = "\(dir)/\(name)"
                if FileManager.default.isExecutableFile(atPath: path) { return path }
            }
        }
        return nil
    }

    public struct RenderError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Loads `page` headless and returns the DOM after its scripts ran, and every console line the page logged.
    public static func render(_ page: URL) throws -> (dom: String, console: [String]) {
        guard let executable else {
            throw RenderError(description: "chromium is not installed (tools/install-deps.sh installs it)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "varaudit-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        process.arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--enable-logging=stderr", "--v=0",
            "--user-data-dir=\(profile.path)", "--virtual-time-budget=3000", "--dump-dom", page.absoluteString,
        ]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let errData = ErrorCollector(err.fileHandleForReading)
        let dom = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let log = String(decoding: errData.finish(), as: UTF8.self)
        return (dom, log.split(separator: "\n").map(String.init).filter { $0.contains(":CONSOLE") })
    }

    /// Reads a pipe on another thread so that neither pipe fills up and blocks the child.
    final class ErrorCollector: @unchecked Sendable {
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)
        init(_ handle: FileHandle) {
            Thread.detachNewThread { [self] in
                data = handle.readDataToEndOfFile()
                done.signal()
            }
        }
        func finish() -> Data {
            done.wait()
            return data
        }
    }
}

/// A tensor of `shape` with values uniform in [−scale, scale), from a xorshift64 stream seeded by `seed`: the same
/// values for the same arguments on every run and machine (for kernel tests that need no reference file).
public func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var t = Tensor(zeros: shape)
    t.withUnsafeMutableBufferPointer { p in
        for i in p.indices {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            p[i] = (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
    }
    return t
}
