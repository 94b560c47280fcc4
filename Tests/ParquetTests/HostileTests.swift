import Foundation
import TestSupport
import Testing

@testable import Parquet

/// Truncated, corrupt and hostile files give errors that name the file; nothing crashes or allocates what a
/// header merely claims.
struct HostileTests {
    /// Writes `bytes` to a fresh temporary file.
    static func file(_ bytes: [UInt8], in dir: URL, _ name: String = "bad.parquet") throws -> URL {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url
    }

    static func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Fixtures.url("parquet/\(name).parquet")))
    }

    /// Opens and reads every row group of `url`, returning the error's text (nil when it reads).
    static func readError(_ url: URL) -> String? {
        do {
            let file = try ParquetFile(url: url)
            try file.forEachRowGroup { _, _ in }
            return nil
        } catch let error as ParquetError {
            return error.description
        } catch {
            return "unexpected error type: \(error)"
        }
    }

    @Test func badMagicAndTruncatedFiles() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try Self.fixture("types_snappy_plain_v1")

        var badMagic = good
        badMagic.replaceSubrange(0..<4, with: Array("PAR0".utf8))
        let a = try Self.file(badMagic, in: dir, "magic.parquet")
        let magicError = try #require(Self.readError(a))
        #expect(magicError.contains(a.path) && magicError.contains("PAR1"), "\(magicError)")

        let b = try Self.file(Array(good.prefix(good.count - 100)), in: dir, "cut.parquet")
        let cutError = try #require(Self.readError(b))
        #expect(cutError.contains(b.path) && cutError.contains("truncated"), "\(cutError)")

        for (name, bytes) in [("empty.parquet", [UInt8]()), ("tiny.parquet", Array("PAR1PAR1".utf8))] {
            let c = try Self.file(bytes, in: dir, name)
            let error = try #require(Self.readError(c))
            #expect(error.contains(c.path) && error.contains("too short"), "\(error)")
        }

        let text = try Self.file(Array("caption,url\na,b\n".utf8), in: dir, "notes.parquet")
        #expect(Self.readError(text)?.contains(text.path) == true)

        let missing = dir.appendingPathComponent("missing.parquet")
        #expect(Self.readError(missing)?.contains(missing.path) == true)
        #expect(Self.readError(dir)?.contains(dir.path) == true)
    }

    @Test func truncatedFooter() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = try Self.fixture("types_zstd_plain_v2")
        let footerLength = Int(good[good.count - 8]) | Int(good[good.count - 7]) << 8 | Int(good[good.count - 6]) << 16
        // The footer cut in half, the length and magic kept: the footer now starts inside the column data.
        let cut = Array(good.prefix(good.count - 8 - footerLength / 2)) + Array(good.suffix(8))
        let url = try Self.file(cut, in: dir)
        let error = try #require(Self.readError(url))
        #expect(error.contains(url.path) && error.contains("footer"), "\(error)")
        // Only the footer's second half kept.
        let tail = Array(good.prefix(4)) + Array(good.suffix(8 + footerLength / 2))
        let url2 = try Self.file(tail, in: dir, "tail.parquet")
        let error2 = try #require(Self.readError(url2))
        #expect(error2.contains(url2.path), "\(error2)")
    }

    @Test func footerLengthBeyondTheFile() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try Self.fixture("types_gzip_dict_v2")
        for (claimed, words) in [(bytes.count + 100, "exceeds"), (0xFFFF_FFFF, "exceeds"), (0, "corrupt footer")] {
            withUnsafeBytes(of: UInt32(claimed).littleEndian) {
                bytes.replaceSubrange((bytes.count - 8)..<(bytes.count - 4), with: $0)
            }
            let url = try Self.file(bytes, in: dir)
            let error = try #require(Self.readError(url))
            #expect(error.contains(url.path) && error.contains(words), "\(claimed): \(error)")
        }
    }

    @Test func pageHeaderClaimingAHugeSize() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (compression, declared, words) in [
            (ParquetCompression.uncompressed, Int32.max, "over the limit"),
            (.snappy, Int32.max, "over the limit"),
            (.snappy, 1 << 29, "snappy"),
            (.uncompressed, 1 << 29, "header says"),
        ] {
            let url = dir.appendingPathComponent("huge-\(compression.rawValue)-\(declared).parquet")
            let writer = try ParquetWriter(
                url: url, columns: [.init("caption", .string), .init("n", .int64, nullable: false)],
                compression: compression)
            writer.declaredPageSize = declared
            try writer.write(rowGroup: [.string(["a", nil, "c"]), .int64([1, 2, 3])])
            try writer.close()
            let file = try ParquetFile(url: url)
            #expect(file.rowCount == 3)
            let error = try #require(Self.readError(url))
            #expect(
                error.contains(url.path) && error.contains("column 'caption'") && error.contains(words),
                "\(compression) \(declared): \(error)")
        }
        // A row group claiming more rows than the limit is refused before anything is read.
        var limits = ParquetLimits()
        limits.maxRowsPerRowGroup = 2
        let url = dir.appendingPathComponent("rows.parquet")
        let writer = try ParquetWriter(url: url, columns: [.init("n", .int32)])
        try writer.write(rowGroup: [.int32([1, 2, 3])])
        try writer.close()
        let error = #expect(throws: ParquetError.self) { try ParquetFile(url: url, limits: limits).readRowGroup(0) }
        #expect(error?.description.contains("over the limit") == true)
    }

    @Test func corruptCompressedPages() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in ["types_snappy_dict_v2", "types_zstd_dict_v1", "types_gzip_plain_v1"] {
            let good = try Self.fixture(name)
            // Overwrite the middle of the column data (well after the first page headers).
            var bad = good
            let footerLength = Int(good[good.count - 8]) | Int(good[good.count - 7]) << 8
            let dataEnd = good.count - 8 - footerLength
            for i in stride(from: dataEnd / 3, to: dataEnd * 2 / 3, by: 1) {
                bad[i] = UInt8(truncatingIfNeeded: i &* 31)
            }
            let url = try Self.file(bad, in: dir, "\(name).parquet")
            let error = try #require(Self.readError(url), "\(name) read despite the damage")
            #expect(error.contains(url.path) && error.contains("row group"), "\(error)")
        }
    }

    /// Random damage never crashes the reader: every outcome is values or a ParquetError naming the file.
    @Test func randomDamageNeverCrashes() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33)
        }
        for name in ["types_none_dict_v1", "types_none_plain_v2", "types_snappy_plain_v1", "dict_fallback"] {
            let good = try Self.fixture(name)
            for trial in 0..<60 {
                var bad = good
                switch trial % 3 {
                case 0:
                    for _ in 0..<(1 + next() % 4) { bad[next() % bad.count] = UInt8(truncatingIfNeeded: next()) }
                case 1:
                    let cut = 4 + next() % (bad.count - 4)
                    bad = Array(bad.prefix(cut)) + Array(good.suffix(8 + next() % 200))
                default:
                    let at = next() % bad.count
                    for k in at..<min(bad.count, at + 16) { bad[k] = 0xFF }
                }
                let url = try Self.file(bad, in: dir)
                if let error = Self.readError(url) {
                    #expect(error.contains(url.path), "\(name) trial \(trial): \(error)")
                }
            }
        }
    }

    @Test func writerRoundTrip() throws {
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for compression in [ParquetCompression.uncompressed, .snappy] {
            let url = dir.appendingPathComponent("w-\(compression.rawValue).parquet")
            let writer = try ParquetWriter(
                url: url,
                columns: [
                    .init("caption", .string), .init("url", .string, nullable: false), .init("w", .int64),
                    .init("s", .float), .init("d", .double), .init("b", .boolean), .init("i", .int32),
                    .init("raw", .bytes),
                ],
                compression: compression)
            let groups: [[ParquetValues]] = [
                [
                    .string(["café 🐱", nil, "line\nbreak"]), .string(["u0", "u1", "u2"]), .int64([1, nil, -3]),
                    .float([0.5, nil, -1e-3]), .double([1e300, 2.5, nil]), .boolean([true, false, nil]),
                    .int32([nil, 7, -7]), .bytes([[0, 1], nil, []]),
                ],
                [
                    .string([nil]), .string(["u3"]), .int64([4]), .float([nil]), .double([nil]), .boolean([true]),
                    .int32([1]), .bytes([[255]]),
                ],
            ]
            for g in groups { try writer.write(rowGroup: g) }
            try writer.close()
            let file = try ParquetFile(url: url)
            #expect(file.rowCount == 4 && file.rowGroups.map(\.rows) == [3, 1])
            #expect(
                file.schema.map(\.valueKind) == [.string, .string, .int64, .float, .double, .boolean, .int32, .bytes])
            #expect(file.schema[1].nullable == false)
            for (g, expected) in groups.enumerated() {
                #expect(try file.readRowGroup(g).map(\.values) == expected)
            }
        }
    }
}
