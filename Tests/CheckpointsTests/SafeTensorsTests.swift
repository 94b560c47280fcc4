import Checkpoints
import Foundation
import Tensors
import TestSupport
import Testing

@Suite struct SafeTensorsTests {
    static let variants = [
        ("state.safetensors", "ref"), ("state_f16.safetensors", "ref_f16"), ("state_bf16.safetensors", "ref_bf16"),
    ]

    @Test(arguments: variants)
    func matchesTorchValues(file: String, refFolder: String) throws {
        let st = try SafeTensorsFile(url: fixture(file))
        let expected = try ExpectedSummary.load(refFolder)
        #expect(st.keys == ["big.values", "conv.bias", "conv.weight", "empty", "norm.weight", "proj.weight", "scalar"])
        #expect(st.metadata == ["format": "pt", "note": "fixture"])
        for key in st.keys {
            let t = try st.tensor(named: key)
            let summary = try #require(expected[key])
            #expect(t.shape == summary.shape, "\(key)")
            #expect(try st.shape(of: key) == summary.shape)
            // Exact: F16/BF16 widen to Float32 without rounding, so the values equal torch's.
            #expect(Array(t.scalars.prefix(4)) == summary.first, "\(key)")
            let reference = try NPY.read(url: fixture("\(refFolder)/\(key).npy"))
            #expect(t.scalars == reference.scalars, "\(key)")
        }
    }

    @Test func scalarAndEmptyTensors() throws {
        let st = try SafeTensorsFile(url: fixture("state.safetensors"))
        let s = try st.tensor(named: "scalar")
        #expect(s.shape == [] && s.scalars == [3.25])
        let e = try st.tensor(named: "empty")
        #expect(e.shape == [0, 3] && e.count == 0)
    }

    @Test func dtypeIsReported() throws {
        #expect(try SafeTensorsFile(url: fixture("state_bf16.safetensors")).dtype(of: "conv.bias") == "BF16")
    }

    @Test func missingKeyNamesFileAndKey() throws {
        let st = try SafeTensorsFile(url: fixture("state.safetensors"))
        expectCheckpointError(["state.safetensors", "nope"]) { _ = try st.tensor(named: "nope") }
    }

    @Test func writerRoundTrip() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("out.safetensors")
        let a = try Tensor(shape: [2, 3], values: [1, -2, 3.5, 4, 5, 6])
        let b = try Tensor(shape: [3], values: [0.25, 0.5, 0.75])
        try SafeTensorsWriter.write(["a": a, "b\"q": b, "z": Tensor(zeros: [0])], metadata: ["k": "v"], to: url)
        let st = try SafeTensorsFile(url: url)
        #expect(st.keys == ["a", "b\"q", "z"])
        #expect(st.metadata == ["k": "v"])
        #expect(try st.tensor(named: "a").scalars == a.scalars)
        #expect(try st.tensor(named: "b\"q").scalars == b.scalars)
        #expect(try st.tensor(named: "z").shape == [0])
    }

    @Test func loadsByExtension() throws {
        let archive = try loadTensorArchive(url: fixture("state.safetensors"))
        #expect(archive is SafeTensorsFile)
        #expect(try loadTensorArchive(url: fixture("state.bin")) is TorchCheckpoint)
        expectCheckpointError(["state.txt", "extension"]) { _ = try loadTensorArchive(url: fixture("state.txt")) }
    }
}

@Suite struct HostileSafeTensorsTests {
    @Test func truncatedFile() {
        expectCheckpointError(["truncated.safetensors", "out of range"]) {
            _ = try SafeTensorsFile(url: fixture("hostile/truncated.safetensors"))
        }
    }

    @Test func headerLengthPastEnd() {
        expectCheckpointError(["header_past_end.safetensors", "10000", "past the end"]) {
            _ = try SafeTensorsFile(url: fixture("hostile/header_past_end.safetensors"))
        }
    }

    @Test func overlappingOffsets() {
        expectCheckpointError(["overlap.safetensors", "second", "overlaps tensor 'first'"]) {
            _ = try SafeTensorsFile(url: fixture("hostile/overlap.safetensors"))
        }
    }

    @Test func outOfRangeOffsets() {
        expectCheckpointError(["out_of_range.safetensors", "far", "out of range"]) {
            _ = try SafeTensorsFile(url: fixture("hostile/out_of_range.safetensors"))
        }
    }

    @Test func wrongByteSpan() {
        expectCheckpointError(["wrong_span.safetensors", "odd", "span 20 bytes", "needs 24"]) {
            _ = try SafeTensorsFile(url: fixture("hostile/wrong_span.safetensors"))
        }
    }

    @Test func unsupportedDTypeNamesKey() throws {
        let st = try SafeTensorsFile(url: fixture("hostile/bad_dtype.safetensors"))
        expectCheckpointError(["bad_dtype.safetensors", "ints", "I64"]) { _ = try st.tensor(named: "ints") }
    }

    @Test func tooShortAndNotJSON() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let short = dir.appendingPathComponent("short.safetensors")
        try Data([1, 2, 3]).write(to: short)
        expectCheckpointError(["short.safetensors", "truncated"]) { _ = try SafeTensorsFile(url: short) }
        let notJSON = dir.appendingPathComponent("notjson.safetensors")
        var bytes: [UInt8] = [4, 0, 0, 0, 0, 0, 0, 0]
        bytes += Array("[1] ".utf8)
        try Data(bytes).write(to: notJSON)
        expectCheckpointError(["notjson.safetensors", "not a JSON object"]) { _ = try SafeTensorsFile(url: notJSON) }
        let negative = dir.appendingPathComponent("negative.safetensors")
        let header = Array(#"{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#.utf8)
        try Data(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header).write(to: negative)
        expectCheckpointError(["negative.safetensors", "x", "non-negative"]) { _ = try SafeTensorsFile(url: negative) }
    }
}
