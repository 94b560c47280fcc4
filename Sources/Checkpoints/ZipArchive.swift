import Foundation

/// A minimal reader of ZIP archives (as written by `torch.save`): central directory, ZIP64 records,
/// STORED (uncompressed) entries only. Entries are byte ranges of a memory-mapped file.
struct ZipArchive {
    /// One stored file.
    struct Entry {
        let name: String
        let method: UInt16
        let flags: UInt16
        let compressedSize: Int
        let uncompressedSize: Int
        let localHeaderOffset: Int
    }

    let mapping: MappedFile
    let entries: [String: Entry]
    /// Entry names in directory order.
    let names: [String]
    private var file: String { mapping.url.path }

    private static let eocdSignature: UInt32 = 0x0605_4b50
    private static let zip64LocatorSignature: UInt32 = 0x0706_4b50
    private static let zip64EOCDSignature: UInt32 = 0x0606_4b50
    private static let centralSignature: UInt32 = 0x0201_4b50
    private static let localSignature: UInt32 = 0x0403_4b50

    init(mapping: MappedFile) throws {
        self.mapping = mapping
        let file = mapping.url.path
        let r = ByteReader(mapping.bytes, file: file)
        let size = mapping.count
        // End of central directory: 22 bytes plus a comment of at most 65535 bytes, searched backwards.
        guard size >= 22 else {
            throw CheckpointError(file: file, "not a zip archive (\(size) bytes, too short)")
        }
        var eocd = -1
        var at = size - 22
        let lowest = max(0, size - 22 - 65535)
        while at >= lowest {
            if try r.u32(at) == Self.eocdSignature {
                eocd = at
                break
            }
            at -= 1
        }
        guard eocd >= 0 else {
            throw CheckpointError(
                file: file, "not a zip archive, or a truncated one (end of central directory not found)")
        }
        var count = Int(try r.u16(eocd + 10))
        var cdSize = Int(try r.u32(eocd + 12))
        var cdOffset = Int(try r.u32(eocd + 16))
        if count == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            let locator = eocd - 20
            guard locator >= 0, try r.u32(locator) == Self.zip64LocatorSignature else {
                throw CheckpointError(file: file, "ZIP64 end-of-central-directory locator missing")
            }
            let record = try Self.int(r.u64(locator + 8), file, "ZIP64 record offset")
            guard try r.u32(record, "ZIP64 end of central directory") == Self.zip64EOCDSignature else {
                throw CheckpointError(file: file, "bad ZIP64 end-of-central-directory signature")
            }
            count = try Self.int(r.u64(record + 32), file, "entry count")
            cdSize = try Self.int(r.u64(record + 40), file, "central directory size")
            cdOffset = try Self.int(r.u64(record + 48), file, "central directory offset")
        }
        try r.check(cdOffset, cdSize, "central directory")
        guard count <= cdSize / 46 else {
            throw CheckpointError(file: file, "central directory claims \(count) entries in \(cdSize) bytes")
        }
        var entries: [String: Entry] = [:]
        var names: [String] = []
        var p = cdOffset
        for _ in 0..<count {
            guard try r.u32(p, "central directory entry") == Self.centralSignature else {
                throw CheckpointError(file: file, "bad central directory entry signature at byte \(p)")
            }
            let flags = try r.u16(p + 8)
            let method = try r.u16(p + 10)
            var csize = Int(try r.u32(p + 20))
            var usize = Int(try r.u32(p + 24))
            let nameLength = Int(try r.u16(p + 28))
            let extraLength = Int(try r.u16(p + 30))
            let commentLength = Int(try r.u16(p + 32))
            var local = Int(try r.u32(p + 42))
            let nameBytes = try r.slice(p + 46, nameLength, "entry name")
            let name = String(decoding: nameBytes, as: UTF8.self)
            // ZIP64 extended information: only the fields whose 32-bit value is saturated, in this order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            try r.check(e, extraLength, "extra field of \(name)")
            while e + 4 <= extraEnd {
                let id = try r.u16(e)
                let length = Int(try r.u16(e + 2))
                if id == 0x0001 {
                    var q = e + 4
                    if usize == 0xFFFF_FFFF {
                        usize = try Self.int(r.u64(q), file, "size of \(name)")
                        q += 8
                    }
                    if csize == 0xFFFF_FFFF {
                        csize = try Self.int(r.u64(q), file, "compressed size of \(name)")
                        q += 8
                    }
                    if local == 0xFFFF_FFFF {
                        local = try Self.int(r.u64(q), file, "offset of \(name)")
                    }
                }
                e += 4 + length
            }
            let entry = Entry(
                name: name, method: method, flags: flags, compressedSize: csize, uncompressedSize: usize,
                localHeaderOffset: local)
            if entries[name] == nil { names.append(name) }
            entries[name] = entry
            p = extraEnd + commentLength
        }
        self.entries = entries
        self.names = names
    }

    private static func int(_ v: UInt64, _ file: String, _ what: String) throws -> Int {
        guard v <= UInt64(Int.max) else { throw CheckpointError(file: file, "\(what) \(v) is too large") }
        return Int(v)
    }

    /// The bytes of a STORED entry; compressed or encrypted entries are refused, naming the entry.
    func data(of name: String) throws -> UnsafeRawBufferPointer {
        guard let entry = entries[name] else {
            throw CheckpointError(file: file, key: name, "zip entry missing")
        }
        guard entry.flags & 1 == 0 else {
            throw CheckpointError(file: file, key: name, "zip entry is encrypted")
        }
        guard entry.method == 0 else {
            throw CheckpointError(
                file: file, key: name,
                "zip entry uses compression method \(entry.method); only STORED (0) entries are supported")
        }
        guard entry.compressedSize == entry.uncompressedSize else {
            throw CheckpointError(file: file, key: name, "stored entry has differing sizes")
        }
        let r = ByteReader(mapping.bytes, file: file, key: name)
        let h = entry.localHeaderOffset
        guard try r.u32(h, "local header") == Self.localSignature else {
            throw CheckpointError(file: file, key: name, "bad local header signature at byte \(h)")
        }
        let start = h + 30 + Int(try r.u16(h + 26)) + Int(try r.u16(h + 28))
        return try r.slice(start, entry.uncompressedSize, "entry data")
    }
}
