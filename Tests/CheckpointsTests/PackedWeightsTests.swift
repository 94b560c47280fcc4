import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

/// Weights handed out packed for our GEMM (`takeWeight(_:shape:packedFor:)`): the same values as the plain ones,
/// made up panel by panel by a random binder, read from a memory-mapped file whose pages are then released.
struct PackedWeightsTests {
    @Test func randomBinderPacksTheSameValues() throws {
        let plain = WeightBinder.random(seed: 11)
        let packed = WeightBinder.random(seed: 11)
        // Same call order, so the same random stream: shapes around the panel widths (8 and 32 rows).
        let shapes: [(String, [Int], PackedSide)] = [
            ("a.weight", [37, 5], .right), ("b.weight", [13, 3, 3, 3], .left), ("c.weight", [64, 7], .right),
        ]
        for (key, shape, side) in shapes {
            let p = try packed.takeWeight(key, shape: shape, packedFor: side)
            let t = try plain.takeWeight(key, shape: shape)
            guard case .packed(let matrix) = p else {
                Issue.record("\(key) was not packed")
                continue
            }
            #expect(matrix.side == side && matrix.shape == shape)
            #expect(matrix.unpacked().scalars == t.widened().scalars, "\(key)")
            // The binder holds the packed matrix only, and hands it out again.
            guard case .packed = packed.madeUpWeights[key] else {
                Issue.record("\(key) is held unpacked")
                continue
            }
            #expect(try packed.takeWeight(key, shape: shape, packedFor: side).widened().scalars == t.widened().scalars)
        }
    }

    @Test(arguments: ["state.safetensors", "state.bin"])
    func mappedWeightsPackAndStayReadable(file: String) throws {
        let archive = try loadTensorArchive(url: fixture(file))
        for key in archive.keys {
            let shape = try archive.shape(of: key)
            guard shape.count >= 2, shape.reduce(1, *) > 0 else { continue }
            let expected = try archive.tensor(named: key).scalars
            let binder = WeightBinder(archive)
            let packed = try binder.takeWeight(key, shape: shape, packedFor: .left)
            #expect(packed.widened().scalars == expected, "\(file) \(key)")
            // The file's pages of this tensor were dropped from memory: reading them again faults the same bytes in.
            #expect(try archive.tensor(named: key).scalars == expected, "\(file) \(key)")
        }
    }
}
