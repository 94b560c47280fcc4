import AuditStore
import Foundation
import Imaging
import TestSupport
import Testing
import VariationAudit

/// The audit as a library call, without the command-line tool.
struct AuditRunTests {
    @Test func libraryAuditStoresEveryVariationAndResumes() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let db = dir.appendingPathComponent("lib.sqlite")
        var c = AuditConfiguration(
            model: Fixtures.url("pipeline/tiny-a"), inputs: [Fixtures.url("photos/rocket.jpg")], database: db)
        c.pipeline.variations = 2
        c.pipeline.steps = 4
        c.pipeline.seed = 42
        c.pipeline.scheduler = .eulerAncestral
        let audit = try AuditRun(c)
        let store = try AuditStore(url: db)
        var stored: [Int] = []
        let outcome = try audit.run(store: store) { event in
            if case .variationStored(_, let k, _) = event { stored.append(k) }
        }
        #expect(stored == [0, 1])
        #expect(outcome.summary.variations == 2)
        #expect(outcome.summary.run.status == "done")
        // Same images as diffusers (Euler ancestral, seed 42) within 2/255.
        let results = try store.variations(VariationQuery())
        for r in results {
            let ours = try RGBImage.load(contentsOf: URL(fileURLWithPath: r.variation.imagePath))
            let ref = try RGBImage.load(
                contentsOf: Fixtures.url("pipeline/tiny-a-expected/euler-a/rocket-\(r.variation.k).png"))
            #expect(zip(ours.pixels, ref.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 255 <= 2)
        }
        // A second run of the same configuration resumes the run and generates nothing.
        var generated = false
        let again = try AuditRun(c).run(store: store) { event in
            if case .inputStarted = event { generated = true }
        }
        #expect(!generated)
        #expect(again.summary.run.id == outcome.summary.run.id)
        #expect(try store.runs().count == 1)
    }

    @Test func fingerprintIgnoresLocationsButNotParameters() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The same model through a symbolic link is the same audit; another seed is not.
        let link = dir.appendingPathComponent("model")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: Fixtures.url("pipeline/tiny-a"))
        let inputs = [Fixtures.url("photos/rocket.jpg")]
        let a = try AuditRun(AuditConfiguration(model: Fixtures.url("pipeline/tiny-a"), inputs: inputs, database: dir))
        let b = try AuditRun(AuditConfiguration(model: link, inputs: inputs, database: dir))
        var other = AuditConfiguration(model: link, inputs: inputs, database: dir)
        other.pipeline.seed = 1
        #expect(a.fingerprint == b.fingerprint)
        #expect(try AuditRun(other).fingerprint != a.fingerprint)
    }
}

struct ShardAndInputTests {
    @Test func shardsFromArgumentsAndSchedulers() throws {
        #expect(try Shard(parsing: "1/4") == Shard(index: 1, count: 4))
        #expect(throws: VariationAuditError.self) { try Shard(parsing: "4/4") }
        #expect(throws: VariationAuditError.self) { try Shard(parsing: "x") }
        let slurm = try Shard.fromEnvironment(
            [
                "SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_COUNT": "4",
                "SLURM_ARRAY_TASK_MIN": "1",
            ], shardCount: nil)
        #expect(slurm == (try Shard(index: 0, count: 4)))
        let k8s = try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "2"], shardCount: 3)
        #expect(k8s == (try Shard(index: 2, count: 3)))
        #expect(throws: VariationAuditError.self) {
            try Shard.fromEnvironment(["JOB_COMPLETION_INDEX": "2"], shardCount: nil)
        }
        #expect(try Shard.fromEnvironment([:], shardCount: 3) == nil)
        let shard = try Shard(index: 1, count: 3)
        #expect((0..<7).filter(shard.contains) == [1, 4])
        #expect(shard.databaseURL(for: URL(fileURLWithPath: "/x/audit.sqlite")).path == "/x/audit.shard-1-of-3.sqlite")
    }

    @Test func inputListIsSortedAbsoluteAndSkipsDotfiles() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["b.PNG", "a.jpg", ".hidden.png", "notes.txt"] {
            try Data().write(to: dir.appendingPathComponent(name))
        }
        let listed = try ImageFiles.list(in: dir).map(\.lastPathComponent)
        #expect(listed == ["a.jpg", "b.PNG"])
        let all = try InputList.sorted(
            files: [dir.appendingPathComponent("b.PNG"), dir.appendingPathComponent("./a.jpg")], directories: [dir])
        #expect(all.map(\.lastPathComponent) == ["a.jpg", "b.PNG"])
    }

    @Test func sha256MatchesTheStandardVectors() throws {
        #expect(Digest.sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Digest.sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // A file read in 4 MiB pieces: one million 'a' (FIPS 180-2's long vector).
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("a.bin")
        try Data(repeating: UInt8(ascii: "a"), count: 1_000_000).write(to: file)
        #expect(try Digest.sha256(fileAt: file) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
