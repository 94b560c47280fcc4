import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

@Suite struct NPYTests {
    @Test func readsFloat32AndFloat16() throws {
        let f32 = try NPY.read(url: fixture("array_f32.npy"))
        #expect(f32.shape == [3, 4, 5])
        let f16 = try NPY.read(url: fixture("array_f16.npy"))
        let widened = try NPY.read(url: fixture("array_f16_as_f32.npy"))  // numpy's own f16 → f32
        #expect(f16.shape == [3, 4, 5])
        #expect(f16.scalars == widened.scalars)
        // Half precision: within 2^-11 relative of the f32 source.
        #expect(maxRelativeError(f16.scalars, reference: f32.scalars) < 1e-3)
    }

    @Test func readsVersion2Header() throws {
        let v2 = try NPY.read(url: fixture("array_v2.npy"))
        let f32 = try NPY.read(url: fixture("array_f32.npy"))
        #expect(v2.shape == [4, 5])
        #expect(v2.scalars == Array(f32.scalars.prefix(20)))
    }

    @Test func readsUInt8() throws {
        let u = try NPY.read(url: fixture("array_u1.npy"))
        #expect(u.shape == [2, 3] && u.scalars == [0, 1, 2, 3, 4, 5])
    }

    @Test func refusesFortranOrder() {
        expectCheckpointError(["array_fortran.npy", "fortran_order"]) {
            _ = try NPY.read(url: fixture("array_fortran.npy"))
        }
    }

    @Test func refusesBadFiles() throws {
        expectCheckpointError(["state.safetensors", "magic"]) { _ = try NPY.read(url: fixture("state.safetensors")) }
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = try Data(contentsOf: fixture("array_f32.npy"))
        let cut = dir.appendingPathComponent("cut.npy")
        try full.prefix(full.count - 4).write(to: cut)
        expectCheckpointError(["cut.npy", "needs 240"]) { _ = try NPY.read(url: cut) }
    }

    @Test(arguments: [[Int](), [7], [2, 3], [2, 1, 4]])
    func writeRoundTrip(shape: [Int]) throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let n = shape.reduce(1, *)
        let t = try Tensor(shape: shape, values: (0..<n).map { Float($0) * 0.37 - 1 })
        let url32 = dir.appendingPathComponent("a.npy")
        try NPY.write(t, to: url32)
        #expect(try NPY.read(url: url32).scalars == t.scalars)
        #expect(try NPY.read(url: url32).shape == shape)
        let url16 = dir.appendingPathComponent("b.npy")
        try NPY.write(t, to: url16, dtype: .float16)
        let back = try NPY.read(url: url16)
        #expect(back.shape == shape)
        #expect(maxAbsDifference(back.scalars, t.scalars) < 2e-3)
        let raw = try Data(contentsOf: url32)
        #expect((raw.count - n * 4) % 64 == 0)  // header padded to 64 bytes, as numpy does
    }
}
