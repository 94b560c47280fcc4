import Foundation
import Tensors

/// Hands out a checkpoint's tensors by key with the shape the network expects, and checks at the end that
/// every tensor was used.
///
/// Scoped binders (`scoped("down_blocks.0")`) share the record of taken keys with their parent.
/// Matches candle's `VarBuilder.pp(...)`, but strict: missing keys, shape mismatches and unused keys are errors.
public final class WeightBinder {
    private final class Ledger {
        let archive: any TensorArchive
        var taken: Set<String> = []
        /// Set for a binder that makes up weights (benchmarks): the generator state.
        var randomState: UInt64?
        /// Tensors a random binder made up, by full key (so that they can be saved as a checkpoint).
        var madeUp: [String: Tensor] = [:]
        init(_ archive: any TensorArchive) { self.archive = archive }
    }

    private let ledger: Ledger
    /// The dotted prefix this binder adds to keys (empty at the root).
    public let prefix: String

    /// A binder over `archive`.
    public init(_ archive: any TensorArchive) {
        ledger = Ledger(archive)
        prefix = ""
    }

    /// A binder over tensors in memory, labelled `name` in errors.
    public convenience init(tensors: [String: Tensor], name: String = "<memory>") {
        self.init(InMemoryTensorArchive(tensors, name: name))
    }

    /// A binder that makes up every tensor it is asked for (for benchmarks at full size without a checkpoint):
    /// rank ≥ 2 weights uniform in ±1/√fan_in, 1-D `weight`s 1, other 1-D tensors 0. It holds no keys, so
    /// `contains` is false, `takeIfPresent` gives `nil`, and `finish()` passes.
    public static func random(seed: UInt64 = 0) -> WeightBinder {
        let binder = WeightBinder(InMemoryTensorArchive([:], name: "<random weights>"))
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

    /// The tensor at `key`, which must have exactly `shape`; errors name the file, the full key and both shapes.
    public func take(_ key: String, shape: [Int]) throws -> Tensor {
        let full = fullKey(key)
        if ledger.randomState != nil {
            if let t = ledger.madeUp[full], t.shape == shape { return t }
            let t = madeUp(full, shape: shape)
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
        let t = try archive.tensor(named: full)
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

    /// A made-up tensor for a random binder (xorshift64*, deterministic per seed and call order).
    private func madeUp(_ key: String, shape: [Int]) -> Tensor {
        if shape.count < 2 {
            return Tensor(repeating: key.hasSuffix("weight") ? 1 : 0, shape: shape)
        }
        let bound = 1 / Float(max(shape.dropFirst().reduce(1, *), 1)).squareRoot()
        var state = ledger.randomState ?? 1
        var t = Tensor(zeros: shape)
        t.withUnsafeMutableBufferPointer { p in
            for i in p.indices {
                state ^= state >> 12
                state ^= state << 25
                state ^= state >> 27
                let u = Float((state &* 0x2545_F491_4F6C_DD1D) >> 40) / Float(1 << 24)  // [0, 1)
                p[i] = (2 * u - 1) * bound
            }
        }
        ledger.randomState = state
        return t
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

    /// Every tensor a random binder made up so far, by full key: a checkpoint of the random network.
    public var madeUpTensors: [String: Tensor] { ledger.madeUp }

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
