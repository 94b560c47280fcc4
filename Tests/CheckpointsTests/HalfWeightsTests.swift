import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

/// Tensors taken as float16: borrowed from the file where stored as F16, else converted once; binders and
/// model folders in float16 precision.
struct HalfWeightsTests {
    /// The float16 rounding of `t`'s values, as bit patterns.
    func rounded(_ t: Tensor) -> [UInt16] { t.scalars.map { Float16($0).bitPattern } }

    @Test(arguments: ["state_f16.safetensors", "state_f16.bin"])
    func float16FilesAreBorrowed(file: String) throws {
        let archive = try loadTensorArchive(url: fixture(file))
        // The .bin's strided views (a transpose, a stride-2 slice) are gathered into a copy.
        let strided: Set = ["proj.weight_t", "shared.b"]
        for key in archive.keys where try archive.shape(of: key).reduce(1, *) > 0 {
            let h = try archive.halfTensor(named: key)
            let f = try archive.tensor(named: key)
            #expect(h.shape == f.shape, "\(key)")
            #expect(h.storage.isBorrowed == !strided.contains(key), "\(file) \(key)")
            // F16 widens exactly, so rounding the float32 view back gives the stored bits.
            #expect(h.bitPatterns == rounded(f), "\(key)")
        }
    }

    @Test(arguments: ["state.safetensors", "state_bf16.safetensors", "state.bin", "state_bf16.bin"])
    func otherDTypesAreRoundedOnce(file: String) throws {
        let archive = try loadTensorArchive(url: fixture(file))
        for key in archive.keys {
            let h = try archive.halfTensor(named: key)
            let f = try archive.tensor(named: key)
            #expect(h.shape == f.shape)
            #expect(!h.storage.isBorrowed || h.count == 0)
            #expect(h.bitPatterns == rounded(f), "\(file) \(key)")
        }
    }

    @Test func writerStoresF16AndBF16() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let values: [Float] = [1, -2.5, 0.1, 65520, 1e-8, 3.14159, 1.00390625, -0.0]
        let t = try Tensor(shape: [2, 4], values: values)
        let half = dir.appendingPathComponent("w.fp16.safetensors")
        try SafeTensorsWriter.write(["w": t, "odd": Tensor(zeros: [3])], dtype: .float16, to: half)
        let h = try SafeTensorsFile(url: half)
        #expect(try h.dtype(of: "w") == "F16")
        #expect(try h.tensor(named: "w").scalars == values.map { Float(Float16($0)) })
        #expect(try h.halfTensor(named: "w").storage.isBorrowed)
        let brain = dir.appendingPathComponent("w.bf16.safetensors")
        try SafeTensorsWriter.write(["w": t], dtype: .bfloat16, to: brain)
        let b = try SafeTensorsFile(url: brain)
        #expect(try b.dtype(of: "w") == "BF16")
        // 1.00390625 = 1 + 2^-8 is a tie between bfloat16 neighbours 1 and 1 + 2^-7: it goes to the even one, 1.
        #expect(
            try b.tensor(named: "w").scalars == [
                1, -2.5, 0.10009765625, 65536, 1.0011717677116394e-08, 3.140625, 1, -0.0,
            ])
    }

    @Test func bindersHandOutMatricesInTheirPrecision() throws {
        let w = try Tensor(shape: [2, 3], values: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
        let bias = try Tensor(shape: [2], values: [0.1, 0.2])
        let archive = InMemoryTensorArchive(["l.weight": w, "l.bias": bias])
        let f32 = WeightBinder(archive)
        #expect(f32.precision == .float32)
        #expect(try f32.takeWeight("l.weight", shape: [2, 3]).precision == .float32)
        let f16 = WeightBinder(archive, precision: .float16)
        let weight = try f16.takeWeight("l.weight", shape: [2, 3])
        guard case .float16(let h) = weight else {
            Issue.record("expected a float16 weight")
            return
        }
        #expect(h.bitPatterns == rounded(w))
        // Small tensors stay float32 whatever the precision.
        #expect(try f16.take("l.bias", shape: [2]).scalars == bias.scalars)
        try f16.finish()
        expectCheckpointError(["l.weight", "shape mismatch"]) {
            _ = try WeightBinder(archive, precision: .float16).takeWeight("l.weight", shape: [3, 2])
        }
    }

    @Test func randomFloat16BinderKeepsOnlyFloat16Matrices() throws {
        let f32 = WeightBinder.random(seed: 5)
        let f16 = WeightBinder.random(seed: 5, precision: .float16)
        for binder in [f32, f16] {
            _ = try binder.takeWeight("a.weight", shape: [8, 4])
            _ = try binder.take("a.bias", shape: [8])
            _ = try binder.takeWeight("b.weight", shape: [3, 8, 3, 3])
        }
        let held = f16.madeUpWeights
        #expect(held["a.weight"]?.precision == .float16 && held["b.weight"]?.precision == .float16)
        #expect(held["a.bias"]?.precision == .float32)
        // The same values as the float32 binder's, rounded.
        for key in ["a.weight", "b.weight"] {
            guard case .float16(let h) = held[key], let reference = f32.madeUpTensors[key] else {
                Issue.record("\(key) missing")
                continue
            }
            #expect(h.bitPatterns == rounded(reference), "\(key)")
        }
        #expect(f16.madeUpTensors["a.weight"]?.shape == [8, 4])
    }

    @Test func modelFoldersPreferTheFp16VariantForFloat16() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = try Tensor(shape: [2], values: [1, 2])
        let plain = dir.appendingPathComponent("diffusion_pytorch_model.safetensors")
        let variant = dir.appendingPathComponent("diffusion_pytorch_model.fp16.safetensors")
        try SafeTensorsWriter.write(["x": t], to: plain)
        try SafeTensorsWriter.write(["x": t], dtype: .float16, to: variant)
        #expect(try DiffusersPipelineFolder.weightsURL(in: dir).lastPathComponent == plain.lastPathComponent)
        #expect(
            try DiffusersPipelineFolder.weightsURL(in: dir, precision: .float16).lastPathComponent
                == variant.lastPathComponent)
        // Without a float32 file, float32 reads the variant (widened once).
        try FileManager.default.removeItem(at: plain)
        #expect(try DiffusersPipelineFolder.weightsURL(in: dir).lastPathComponent == variant.lastPathComponent)
        try FileManager.default.removeItem(at: variant)
        expectCheckpointError(["no weights", "model.fp16.safetensors"]) {
            _ = try DiffusersPipelineFolder.weightsURL(in: dir, precision: .float16)
        }
        #expect(
            DiffusersPipelineFolder.float16WeightFileNames == [
                "diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors",
                "diffusion_pytorch_model.fp16.bin", "pytorch_model.fp16.bin",
            ])
    }
}
