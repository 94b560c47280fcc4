import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

@Suite struct WeightBinderTests {
    @Test func scopedTakeAndFinish() throws {
        let binder = WeightBinder(try SafeTensorsFile(url: fixture("state.safetensors")))
        let conv = binder.scoped("conv")
        #expect(conv.fullKey("weight") == "conv.weight")
        #expect(try conv.take("weight", shape: [4, 3, 3, 3]).shape == [4, 3, 3, 3])
        _ = try conv.take("bias", shape: [4])
        try conv.finish()  // everything under "conv" was used
        #expect(binder.takenKeys == ["conv.weight", "conv.bias"])
        expectCheckpointError(["state.safetensors", "5 unused tensors", "big.values", "empty"]) { try binder.finish() }
        _ = try binder.take("norm.weight", shape: [8])
        _ = try binder.scoped("proj").take("weight")
        binder.ignore("scalar")
        binder.ignore(prefix: "big")
        #expect(binder.unusedKeys == ["empty"])
        _ = try binder.takeIfPresent("empty", shape: [0, 3])
        #expect(try binder.takeIfPresent("absent", shape: [1]) == nil)
        try binder.finish()
    }

    @Test func missingKeyAndShapeMismatch() throws {
        let binder = WeightBinder(try TorchCheckpoint(url: fixture("state.bin")))
        let norm = binder.scoped("norm")
        expectCheckpointError(["state.bin", "norm.bias", "missing"]) { _ = try norm.take("bias", shape: [8]) }
        expectCheckpointError(["state.bin", "norm.weight", "[16]", "[8]"]) { _ = try norm.take("weight", shape: [16]) }
    }

    @Test func inMemoryAndUnusedListTruncates() throws {
        var tensors: [String: Tensor] = [:]
        for i in 0..<9 { tensors["layer.\(i)"] = Tensor(zeros: [1]) }
        let binder = WeightBinder(tensors: tensors, name: "mem")
        _ = try binder.scoped("layer").take("0", shape: [1])
        expectCheckpointError(["mem", "8 unused tensors", "layer.1", "(3 more)"]) { try binder.finish() }
    }
}
