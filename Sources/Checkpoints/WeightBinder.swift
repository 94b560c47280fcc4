import Foundation
import Tensors

/// Hands out a checkpoint's tensors by key with the shape the network expects, and checks at the end that
/// every tensor was used.
///
/// Scoped binders (`scoped("down_blocks.0")`) share the record of taken keys with their parent.
/// Matches candle's `VarBuilder.pp(...)`, but strict: missing keys, shape mismatches and unused keys are errors.
///
/// `take` gives float32 tensors (norms, biases, embeddings); `takeWeight` gives the large matrices of linear and
/// convolution layers in the binder's `precision`.
public final class WeightBinder {
    private final class Ledger {
        let archive: any TensorArchive
        let precision: WeightPrecision
        var taken: Set<String> = []
        /// Set for a binder that makes up weights (benchmarks): the generator state.
        var randomState: UInt64?
        /// Tensors a random binder made up, by full key (so that they can be saved as a checkpoint); a float16
        /// binder keeps its `takeWeight` matrices only as float16.
        var madeUp: [String: WeightTensor] = [:]
        init(_ archive: any TensorArchive, precision: WeightPrecision) {
            self.archive = archive
            self.precision = precision
        }
    }

    private let ledger: Ledger
    /// The dotted prefix this binder adds to keys (empty at the root).
    public let prefix: String

    /// A binder over `archive` whose `takeWeight` matrices come in `precision` (default float32).
    public init(_ archive: any TensorArchive, precision: WeightPrecision = .float32) {
        ledger = Ledger(archive, precision: precision)
        prefix = ""
    }

    /// How `takeWeight` hands out the large matrices.
    public var precision: WeightPrecision { ledger.precision }

    /// A binder over tensors in memory, labelled `name` in errors.
    public convenience init(tensors: [String: Tensor], name: String = "<memory>") {
        self.init(InMemoryTensorArchive(tensors, name: name))
    }

    /// A binder that makes up every tensor it is asked for (for benchmarks at full size without a checkpoint):
    /// rank ≥ 2 weights uniform in ±1/√fan_in, 1-D `weight`s 1, other 1-D tensors 0. It holds no keys, so
    /// `contains` is false, `takeIfPresent` gives `nil`, and `finish()` passes. With `precision` float16, the
    /// `takeWeight` matrices are the float32 ones rounded to float16, and only the float16 values are kept.
    public static func random(seed: UInt64 = 0, precision: WeightPrecision = .float32) -> WeightBinder {
        let binder = WeightBinder(InMemoryTensorArchive([:], name: "<random weights>"), precision: precision)
        binder.ledger.randomState = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return binder
    }

    private init(ledger: Ledger, prefix: String) {
        self.ledger = ledger
        self.prefix = prefix
    }

    /// A binder whose keys are relative to `component` (e.g. `"down_blocks.0"`) below this one's prefix.
    public func scoped(_ component: String) -> WeightBinder {
        WeightBinder(ledger: ledger, prefix: fullKey(component))
    }

    /// The archive key for a relative `key`.
    public func fullKey(_ key: String) -> String {
        prefix.isEmpty ? key : "\(prefix).\(key)"
    }

    /// Whether the archive holds `key` (relative to this binder's prefix).
    public func contains(_ key: String) -> Bool {
        ledger.archive.contains(fullKey(key))
    }

    /// The tensor at `key` as float32, which must have exactly `shape`; errors name the file, the full key and
    /// both shapes.
    public func take(_ key: String, shape: [Int]) throws -> Tensor {
        try take(key, shape: shape, precision: .float32).widened()
    }

    /// The weight matrix at `key` (a linear or convolution layer's), which must have exactly `shape`, in the
    /// binder's `precision`: float16 is borrowed from the file where it is stored as float16, else converted once.
    /// With `packedFor`, a float32 matrix comes packed for that side of our GEMM (`PackedMatrix`), which takes the
    /// plain tensor's place: a random binder keeps only the packed one, and a memory-mapped file's pages of it are
    /// released.
    public func takeWeight(_ key: String, shape: [Int], packedFor side: PackedSide? = nil) throws -> WeightTensor {
        let t = try take(key, shape: shape, precision: ledger.precision, packedFor: side)
        return side.map { t.packed(for: $0) } ?? t
    }

    private func take(
        _ key: String, shape: [Int], precision: WeightPrecision, packedFor side: PackedSide? = nil
    ) throws -> WeightTensor {
        let full = fullKey(key)
        if ledger.randomState != nil {
            if let t = ledger.madeUp[full], t.shape == shape, t.precision == precision { return t }
            let t = madeUp(full, shape: shape, precision: precision, packedFor: side)
            ledger.madeUp[full] = t
            return t
        }
        let archive = ledger.archive
        guard archive.contains(full) else {
            throw CheckpointError(file: archive.fileDescription, key: full, "missing tensor (expected shape \(shape))")
        }
        let stored = try archive.shape(of: full)
        guard stored == shape else {
            throw CheckpointError(
                file: archive.fileDescription, key: full, "shape mismatch: expected \(shape), checkpoint has \(stored)")
        }
        let t = try archive.weight(named: full, precision: precision)
        ledger.taken.insert(full)
        return t
    }

    /// The tensor at `key` whatever its shape (for callers that check it themselves).
    public func take(_ key: String) throws -> Tensor {
        let full = fullKey(key)
        let archive = ledger.archive
        guard archive.contains(full) else {
            throw CheckpointError(file: archive.fileDescription, key: full, "missing tensor")
        }
        let t = try archive.tensor(named: full)
        ledger.taken.insert(full)
        return t
    }

    /// The tensor at `key` if present (with `shape`), else `nil`.
    public func takeIfPresent(_ key: String, shape: [Int]) throws -> Tensor? {
        contains(key) ? try take(key, shape: shape) : nil
    }

    /// A made-up tensor for a random binder (xorshift64*, deterministic per seed and call order), in `precision`:
    /// float16 values are the float32 ones rounded, made a block at a time so that no float32 copy exists.
    /// With `side`, a float32 matrix is packed panel by panel as it is made (no plain copy is ever whole).
    private func madeUp(
        _ key: String, shape: [Int], precision: WeightPrecision, packedFor side: PackedSide? = nil
    ) -> WeightTensor {
        if shape.count < 2 {
            return WeightTensor(Tensor(repeating: key.hasSuffix("weight") ? 1 : 0, shape: shape), precision: precision)
        }
        let bound = 1 / Float(max(shape.dropFirst().reduce(1, *), 1)).squareRoot()
        var state = ledger.randomState ?? 1
        func fill(_ p: UnsafeMutableBufferPointer<Float>) {
            for i in p.indices {
                state ^= state >> 12
                state ^= state << 25
                state ^= state >> 27
                let u = Float((state &* 0x2545_F491_4F6C_DD1D) >> 40) / Float(1 << 24)  // [0, 1)
                p[i] = (2 * u - 1) * bound
            }
        }
        defer { ledger.randomState = state }
        switch precision {
        case .float32:
            if let side { return .packed(PackedMatrix(shape: shape, side: side) { _, rows in fill(rows) }) }
            var t = Tensor(zeros: shape)
            t.withUnsafeMutableBufferPointer(fill)
            return .float32(t)
        case .float16:
            var block = [Float](repeating: 0, count: 1 << 14)
            let storage = HalfStorage(count: shape.reduce(1, *)) { out in
                for start in stride(from: 0, to: out.count, by: block.count) {
                    let n = min(block.count, out.count - start)
                    block.withUnsafeMutableBufferPointer { fill(UnsafeMutableBufferPointer(rebasing: $0[..<n])) }
                    block.withUnsafeBufferPointer { src in
                        Float16Conversion.narrow(
                            UnsafeBufferPointer(rebasing: src[..<n]),
                            into: UnsafeMutableBufferPointer(rebasing: out[start..<(start + n)]))
                    }
                }
            }
            return .float16(HalfTensor(shape: shape, storage: storage))
        }
    }

    /// Marks `key` as deliberately unused (e.g. an int64 `position_ids` buffer).
    public func ignore(_ key: String) {
        let full = fullKey(key)
        if ledger.archive.contains(full) { ledger.taken.insert(full) }
    }

    /// Marks every key under `component` (relative) as deliberately unused.
    public func ignore(prefix component: String) {
        let p = fullKey(component) + "."
        for key in ledger.archive.keys where key.hasPrefix(p) { ledger.taken.insert(key) }
    }

    /// Every tensor a random binder made up so far, by full key, as float32 (float16 ones widened): a checkpoint
    /// of the random network.
    public var madeUpTensors: [String: Tensor] { ledger.madeUp.mapValues { $0.widened() } }

    /// Every tensor a random binder made up so far, by full key, as held (float16 ones are not widened).
    public var madeUpWeights: [String: WeightTensor] { ledger.madeUp }

    /// Full keys taken so far (by this binder and every binder scoped from the same root).
    public var takenKeys: Set<String> { ledger.taken }

    /// Keys under this binder's prefix not yet taken, sorted.
    public var unusedKeys: [String] {
        let p = prefix.isEmpty ? "" : prefix + "."
        return ledger.archive.keys.filter { $0.hasPrefix(p) && !ledger.taken.contains($0) }
    }

    /// Throws if any key under this binder's prefix was not taken, listing the first few and the count.
    public func finish() throws {
        let unused = unusedKeys
        guard !unused.isEmpty else { return }
        let shown = unused.prefix(5).joined(separator: ", ")
        let more = unused.count > 5 ? ", … (\(unused.count - 5) more)" : ""
        throw CheckpointError(
            file: ledger.archive.fileDescription, key: prefix.isEmpty ? nil : prefix,
            "\(unused.count) unused tensor\(unused.count == 1 ? "" : "s"): \(shown)\(more)")
    }
}
