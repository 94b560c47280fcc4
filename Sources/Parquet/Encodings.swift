/// Parquet's value and level encodings: the RLE / bit-packing hybrid, PLAIN, and BYTE_STREAM_SPLIT.

/// Decodes `count` values of the RLE / bit-packing hybrid (bit width 0...32) from `cursor`, appending them to
/// `out`. A bit-packed run holds groups of 8 values packed least significant bit first; an RLE run one value
/// in ⌈width / 8⌉ little-endian bytes. The last run may be cut short of its padding.
func decodeHybrid<T: FixedWidthInteger & UnsignedInteger>(
    _ cursor: inout ByteCursor, bitWidth: Int, count: Int, into out: inout [T]
) throws {
    guard (0...32).contains(bitWidth) else { throw Malformed("bit width \(bitWidth) is out of range 0...32") }
    guard T.bitWidth >= bitWidth else { throw Malformed("bit width \(bitWidth) is too wide for levels") }
    let mask: UInt64 = (1 << UInt64(bitWidth)) - 1
    var produced = 0
    out.reserveCapacity(out.count + count)
    while produced < count {
        let header = try cursor.varint()
        let wanted = count - produced
        if header & 1 == 1 {
            let groups = header >> 1
            guard groups <= UInt64(Int.max / 256) else { throw Malformed("bit-packed run of \(groups) groups") }
            let take = min(Int(groups) * 8, wanted)
            let runBytes = Int(groups) * bitWidth
            let neededBytes = (take * bitWidth + 7) / 8
            try cursor.need(neededBytes, "a bit-packed run of \(take) values")
            let start = cursor.position
            let base = cursor.base
            let end = cursor.end
            if bitWidth == 0 {
                for _ in 0..<take { out.append(0) }
            } else {
                var bit = 0
                for _ in 0..<take {
                    let byte = start + (bit >> 3)
                    let shift = UInt64(bit & 7)
                    var word: UInt64
                    if byte + 8 <= end {
                        word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: byte, as: UInt64.self))
                    } else {
                        word = 0
                        var k = 0
                        while byte + k < end && k < 8 {
                            word |= UInt64(base[byte + k]) << UInt64(8 * k)
                            k += 1
                        }
                    }
                    out.append(T(truncatingIfNeeded: (word >> shift) & mask))
                    bit += bitWidth
                }
            }
            cursor.position += min(runBytes, cursor.remaining)
            produced += take
        } else {
            let runLength = header >> 1
            let width = (bitWidth + 7) / 8
            try cursor.need(width, "an RLE run's value")
            var value: UInt64 = 0
            for k in 0..<width { value |= UInt64(cursor.base[cursor.position + k]) << UInt64(8 * k) }
            cursor.position += width
            guard value <= mask else { throw Malformed("RLE value \(value) does not fit in \(bitWidth) bits") }
            let take = runLength > UInt64(wanted) ? wanted : Int(runLength)
            out.append(contentsOf: repeatElement(T(truncatingIfNeeded: value), count: take))
            produced += take
        }
    }
    guard produced == count else { throw Malformed("levels or indices end after \(produced) of \(count) values") }
}

/// Appends `count` PLAIN values of a fixed-width little-endian type.
func decodePlainFixed<T: FixedWidthInteger>(_ cursor: inout ByteCursor, count: Int, into out: inout [T]) throws {
    let size = MemoryLayout<T>.size
    try cursor.need(count * size, "\(count) PLAIN values")
    out.reserveCapacity(out.count + count)
    let base = cursor.base
    let start = cursor.position
    for i in 0..<count {
        out.append(T(littleEndian: base.loadUnaligned(fromByteOffset: start + i * size, as: T.self)))
    }
    cursor.position += count * size
}

/// Appends `count` PLAIN booleans (bit-packed, least significant bit first).
func decodePlainBooleans(_ cursor: inout ByteCursor, count: Int, into out: inout [Bool]) throws {
    let bytes = (count + 7) / 8
    try cursor.need(bytes, "\(count) PLAIN booleans")
    out.reserveCapacity(out.count + count)
    let start = cursor.position
    for i in 0..<count { out.append((cursor.base[start + (i >> 3)] >> UInt8(i & 7)) & 1 == 1) }
    cursor.position += bytes
}

/// Appends `count` PLAIN byte arrays (each a 4-byte little-endian length and the bytes), made into values
/// by `make`.
func decodePlainByteArrays<T>(
    _ cursor: inout ByteCursor, count: Int, into out: inout [T], _ make: (UnsafeRawBufferPointer) -> T
) throws {
    try cursor.need(count * 4, "\(count) PLAIN byte arrays")
    out.reserveCapacity(out.count + count)
    for _ in 0..<count {
        let length = Int(try cursor.uint32LE())
        out.append(make(try cursor.bytes(length)))
    }
}

/// Appends `count` PLAIN fixed-length byte arrays of `width` bytes, made into values by `make`.
func decodePlainFixedLength<T>(
    _ cursor: inout ByteCursor, count: Int, width: Int, into out: inout [T], _ make: (UnsafeRawBufferPointer) -> T
) throws {
    try cursor.need(count * width, "\(count) FIXED_LEN_BYTE_ARRAY values of \(width) bytes")
    out.reserveCapacity(out.count + count)
    for _ in 0..<count { out.append(make(try cursor.bytes(width))) }
}

/// `count` BYTE_STREAM_SPLIT values of `width` bytes (byte `j` of value `i` at `j × count + i`) rearranged
/// into PLAIN order.
func byteStreamSplitToPlain(_ cursor: inout ByteCursor, count: Int, width: Int) throws -> [UInt8] {
    try cursor.need(count * width, "\(count) BYTE_STREAM_SPLIT values")
    var out = [UInt8](repeating: 0, count: count * width)
    let start = cursor.position
    for j in 0..<width {
        for i in 0..<count { out[i * width + j] = cursor.base[start + j * count + i] }
    }
    cursor.position += count * width
    return out
}

/// INT96 timestamps (8 bytes of nanoseconds within the day, then 4 bytes of Julian day) as nanoseconds since
/// the Unix epoch, wrapping as Arrow does on overflow.
func int96Nanoseconds(_ bytes: UnsafeRawBufferPointer) -> Int64 {
    let nanos = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: Int64.self))
    let day = Int64(Int32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: Int32.self)))
    return (day &- 2_440_588) &* 86_400_000_000_000 &+ nanos
}
