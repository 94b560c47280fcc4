import AuditStore
import Foundation
import TestSupport
import Testing

/// `varaudit demo`, the README's first command, on a fresh cache.
struct DemoTests {
    @Test func demoFindsEveryPlantedCopyAndItsReportRenders() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("demo")
        let cache = dir.appendingPathComponent("cache")
        let run = try Fixtures.runTool(["demo", "--out", out.path, "--cache", cache.path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("found 3 of 3 planted inputs"), "\(run.stdout)")
        #expect(run.stdout.contains("found 3 of 3 planted variations"))
        #expect(run.stdout.contains("safety: found 2 of 2 planted inputs"))
        #expect(run.stdout.contains("weights are random"))
        #expect(run.stdout.contains(out.appendingPathComponent("index.html").path))

        // Exactly the planted variations are memorized; the store says so too.
        let store = try AuditStore(url: out.appendingPathComponent("audit.sqlite"), create: false)
        let summary = try store.summary(of: try store.run(nil))
        #expect(summary.variations == 40)
        #expect(summary.memorized == 3)
        #expect(summary.memorizedInputs == 3)
        #expect(summary.unsafeInputs == 2)
        #expect(try store.controls(run: 1).allSatisfy(\.found))

        let page = out.appendingPathComponent("index.html")
        let (dom, console) = try Browser.render(page)
        #expect(console.isEmpty, "\(console)")
        #expect(dom.contains("data-visible-cards=\"40\""))
        #expect(dom.contains("100.0%"))

        // A second run reuses the cache and the finished audit.
        let again = try Fixtures.runTool(["demo", "--out", out.path, "--cache", cache.path])
        #expect(again.status == 0)
        #expect(again.stderr.contains("using the cached model"))
        #expect(again.stderr.contains("already audited"))
    }
}
