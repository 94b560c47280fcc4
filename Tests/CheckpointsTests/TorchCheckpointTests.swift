import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

@Suite struct TorchCheckpointTests {
    static let variants = [("state.bin", "ref"), ("state_f16.bin", "ref_f16"), ("state_bf16.bin", "ref_bf16")]

    @Test(arguments: variants)
    func matchesTorchValues(file: String, refFolder: String) throws {
        let ckpt = try TorchCheckpoint(url: fixture(file))
        let expected = try ExpectedSummary.load(refFolder)
        #expect(ckpt.keys == expected.keys.sorted())
        #expect(ckpt.keys.contains("proj.weight_t") && ckpt.keys.contains("shared.b"))
        for key in ckpt.keys {
            let t = try ckpt.tensor(named: key)
            let summary = try #require(expected[key])
            #expect(t.shape == summary.shape, "\(key)")
            #expect(Array(t.scalars.prefix(4)) == summary.first, "\(key)")
            let reference = try NPY.read(url: fixture("\(refFolder)/\(key).npy"))
            #expect(t.scalars == reference.scalars, "\(key)")
        }
    }

    @Test func nonContiguousViewsAreGathered() throws {
        let ckpt = try TorchCheckpoint(url: fixture("state.bin"))
        let w = try ckpt.tensor(named: "proj.weight")  // [6, 5]
        let wt = try ckpt.tensor(named: "proj.weight_t")  // [5, 6], stride (1, 5)
        #expect(wt.shape == [5, 6])
        for i in 0..<5 {
            for j in 0..<6 { #expect(wt[i, j] == w[j, i]) }
        }
        // Views into one storage at an offset, and with stride 2.
        #expect(try ckpt.tensor(named: "shared.a").scalars == [2, 3, 4, 5, 6, 7])
        #expect(try ckpt.tensor(named: "shared.b").scalars == [10, 12, 14, 16, 18])
        #expect(try ckpt.storageType(of: "shared.b") == "FloatStorage")
    }

    @Test func agreesWithSafeTensors() throws {
        let bin = try TorchCheckpoint(url: fixture("state_f16.bin"))
        let st = try SafeTensorsFile(url: fixture("state_f16.safetensors"))
        for key in st.keys {
            #expect(try bin.tensor(named: key).scalars == st.tensor(named: key).scalars, "\(key)")
        }
    }

    @Test func loadAllAndMissingKey() throws {
        let ckpt = try TorchCheckpoint(url: fixture("state.bin"))
        let all = try ckpt.loadAll()
        #expect(all.count == 10)
        expectCheckpointError(["state.bin", "missing.weight"]) { _ = try ckpt.tensor(named: "missing.weight") }
    }
}

@Suite struct TorchFormatVariantTests {
    @Test(arguments: ["state_zip64.bin", "state_p4.bin"])
    func zip64AndProtocol4MatchTheReference(file: String) throws {
        let ckpt = try TorchCheckpoint(url: fixture(file))
        let plain = try TorchCheckpoint(url: fixture("state.bin"))
        #expect(!ckpt.keys.isEmpty)
        for key in ckpt.keys {
            #expect(try ckpt.tensor(named: key).scalars == plain.tensor(named: key).scalars, "\(key)")
            #expect(try ckpt.shape(of: key) == plain.shape(of: key))
        }
    }

    @Test func nestedStateDictOfParameters() throws {
        let ckpt = try TorchCheckpoint(url: fixture("nested.bin"))
        #expect(ckpt.keys == ["state_dict.bias", "state_dict.weight"])
        #expect(ckpt.nonTensorKeys == ["epoch"])
        let expected = try ExpectedSummary.load("ref_nested")
        for key in ckpt.keys {
            let t = try ckpt.tensor(named: key)
            #expect(t.shape == expected[key]?.shape)
            #expect(Array(t.scalars.prefix(4)) == expected[key]?.first)
        }
        let binder = WeightBinder(ckpt).scoped("state_dict")
        _ = try binder.take("weight", shape: [2, 3])
        _ = try binder.take("bias", shape: [2])
        try binder.finish()
    }

    @Test func alignedFloat32IsBorrowedFromTheMapping() throws {
        // Zero-copy: two reads of the same tensor see the same bytes of the mapping.
        let st = try SafeTensorsFile(url: fixture("state.safetensors"))
        #expect(try st.tensor(named: "conv.weight").storage.base == st.tensor(named: "conv.weight").storage.base)
        let bin = try TorchCheckpoint(url: fixture("state.bin"))
        #expect(try bin.tensor(named: "conv.weight").storage.base == bin.tensor(named: "conv.weight").storage.base)
        // Converted dtypes are owned copies.
        let f16 = try SafeTensorsFile(url: fixture("state_f16.safetensors"))
        let (a, b) = (try f16.tensor(named: "conv.weight"), try f16.tensor(named: "conv.weight"))
        #expect(a.storage.base != b.storage.base)
    }
}

@Suite struct HostileTorchTests {
    @Test func refusesOsSystem() {
        expectCheckpointError(["os_system.bin", "archive/data.pkl", "refused global 'os.system'"]) {
            _ = try TorchCheckpoint(url: fixture("hostile/os_system.bin"))
        }
    }

    @Test func refusesBuiltinsEval() {
        expectCheckpointError(["builtins_eval.bin", "archive/data.pkl", "refused global 'builtins.eval'"]) {
            _ = try TorchCheckpoint(url: fixture("hostile/builtins_eval.bin"))
        }
    }

    @Test func refusesNonZip() {
        expectCheckpointError(["not_a_zip.bin", "not a zip archive"]) {
            _ = try TorchCheckpoint(url: fixture("hostile/not_a_zip.bin"))
        }
    }

    @Test func refusesTruncatedZip() {
        expectCheckpointError(["truncated.bin", "zip"]) {
            _ = try TorchCheckpoint(url: fixture("hostile/truncated.bin"))
        }
    }

    @Test func refusesCompressedEntries() {
        expectCheckpointError(["deflated.bin", "archive/data.pkl", "compression method 8"]) {
            _ = try TorchCheckpoint(url: fixture("hostile/deflated.bin"))
        }
    }

    @Test func unsupportedStorageNamesKey() throws {
        let ckpt = try TorchCheckpoint(url: fixture("hostile/int64.bin"))
        #expect(ckpt.keys == ["ids"])
        expectCheckpointError(["int64.bin", "ids", "LongStorage"]) { _ = try ckpt.tensor(named: "ids") }
    }
}
