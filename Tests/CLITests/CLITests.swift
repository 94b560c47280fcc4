import Checkpoints
import Foundation
import TestSupport
import Testing

/// The built `varaudit` tool, run as a user would.
struct CLITests {
    @Test func preprocessWritesTheSeedTensor() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.npy")
        let run = try Fixtures.runTool([
            "preprocess", "--image", Fixtures.url("photos/chelsea.png").path,
            "--image", Fixtures.url("photos/rocket.jpg").path, "--out", out.path,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let x = try NPY.read(url: out)
        #expect(x.shape == [2, 3, 224, 224])
        let chelsea = try Fixtures.tensors("preprocess/chelsea.safetensors").tensor(named: "seed_224").scalars
        let rocket = try Fixtures.tensors("preprocess/rocket.safetensors").tensor(named: "seed_224").scalars
        let all = x.scalars
        #expect(maxAbsDifference(Array(all[..<chelsea.count]), chelsea) <= 1e-5)
        #expect(maxAbsDifference(Array(all[chelsea.count...]), rocket) <= 1e-5)
    }

    @Test func unreadableImageNamesTheFileAndWritesNothing() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.npy")
        let bogus = Fixtures.url("checkpoints/state.safetensors").path
        let run = try Fixtures.runTool(["preprocess", "--image", bogus, "--out", out.path])
        #expect(run.status != 0)
        #expect(run.stderr.contains(bogus))
        #expect(!FileManager.default.fileExists(atPath: out.path))
        let missing = try Fixtures.runTool(["preprocess", "--out", out.path])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("--image"))
    }

    @Test func inspectListsTensorsAsJSON() throws {
        let file = Fixtures.url("checkpoints/state.safetensors").path
        let run = try Fixtures.runTool(["inspect", "--json", file])
        #expect(run.status == 0, "\(run.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [[String: Any]]
        let tensors = parsed?.first?["tensors"] as? [[String: Any]] ?? []
        let archive = try SafeTensorsFile(url: Fixtures.url("checkpoints/state.safetensors"))
        #expect(tensors.compactMap { $0["name"] as? String } == archive.keys)
        for t in tensors {
            let name = t["name"] as? String ?? ""
            #expect(t["shape"] as? [Int] == (try archive.shape(of: name)))
        }
    }

    @Test func inspectRefusesAPickleThatCallsOsSystem() throws {
        let file = Fixtures.url("checkpoints/hostile/os_system.bin").path
        let run = try Fixtures.runTool(["inspect", file])
        #expect(run.status != 0)
        #expect(run.stderr.contains("system"))
        #expect(run.stderr.contains(file))
    }
}
