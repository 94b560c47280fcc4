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
