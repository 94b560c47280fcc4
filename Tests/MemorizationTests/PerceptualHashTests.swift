import Dispatch
import Foundation
import Imaging
import Memorization
import Tensors
import TestSupport
import Testing

/// The 64-bit DCT perceptual hash in a faiss binary index, and Carlini et al.'s tiled ℓ2.
struct PerceptualHashTests {
    static func crop(_ image: RGBImage, x: Int, y: Int, width: Int, height: Int) throws -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for row in 0..<height {
            let src = ((y + row) * image.width + x) * 3
            for i in 0..<(width * 3) { pixels[row * width * 3 + i] = image.pixels[src + i] }
        }
        return try RGBImage(width: width, height: height, pixels: pixels)
    }

    /// Relative crop: the box [x0, x1) × [y0, y1) in fractions of the size.
    static func crop(_ image: RGBImage, _ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double) throws -> RGBImage {
        let x = Int(x0 * Double(image.width))
        let y = Int(y0 * Double(image.height))
        return try crop(
            image, x: x, y: y, width: Int(x1 * Double(image.width)) - x, height: Int(y1 * Double(image.height)) - y)
    }

    static func mirrored(_ image: RGBImage) throws -> RGBImage {
        var pixels = image.pixels
        for y in 0..<image.height {
            for x in 0..<image.width {
                for c in 0..<3 {
                    pixels[(y * image.width + x) * 3 + c] =
                        image.pixels[(y * image.width + image.width - 1 - x) * 3 + c]
                }
            }
        }
        return try RGBImage(width: image.width, height: image.height, pixels: pixels)
    }

    /// 18 "photographs" (each fixture photo whole, its four 70 % corner crops and a 60 % centre crop) and
    /// 3 copies of each: JPEG quality 75, ½× resize, a centred 5 % crop (2.5 % off each side). 10,000
    /// distractors: 4,000 small crops (20–35 % of a side) and 1,000 mirrored large crops of the same photos,
    /// 3,000 smooth random colour fields (32 px) and 2,000 noise images (16–64 px). A copy is found when its original
    /// is within `defaultMatchDistance` bits; a false positive is a distractor within that radius of any copy.
    /// (One-sided 5 % crops are weaker, up to 20 bits; the test prints their recall without asserting it.)
    @Test func findsReencodedResizedAndCroppedCopiesAmong10kDistractors() throws {
        // The photographs at half size (300–320 px on the long side) keep debug-build runtime modest.
        let photos = try ["chelsea.png", "coffee.png", "rocket.jpg"].map {
            let full = try RGBImage.load(contentsOf: Fixtures.url("photos/\($0)"))
            return try Resample.bicubicPIL(full, width: full.width / 2, height: full.height / 2)
        }
        var originals: [RGBImage] = []
        for p in photos {
            originals.append(p)
            for (x, y) in [(0.0, 0.0), (0.3, 0.0), (0.0, 0.3), (0.3, 0.3)] {
                originals.append(try Self.crop(p, x, y, x + 0.7, y + 0.7))
            }
            originals.append(try Self.crop(p, 0.2, 0.2, 0.8, 0.8))
        }
        var copies: [(original: Int, image: RGBImage)] = []
        for (i, o) in originals.enumerated() {
            copies.append((i, try RGBImage.decode(data: try o.jpegData(quality: 75), name: "copy.jpg")))
            copies.append((i, try Resample.bicubicPIL(o, width: o.width / 2, height: o.height / 2)))
            copies.append((i, try Self.crop(o, 0.025, 0.025, 0.975, 0.975)))
        }
        let oneSided =
            try originals.map { try Self.crop($0, 0, 0, 1, 0.95) } + originals.map { try Self.crop($0, 0, 0, 0.95, 1) }

        var rng = SplitMix64(seed: 11)
        let specs: [UInt64] = (0..<10_000).map { _ in rng.next() }
        // Distractors are cut from quarter-size photos (cheap in debug builds; the hash sees 32×32 anyway).
        let photoList = try photos.map { try Resample.bicubicPIL($0, width: $0.width / 2, height: $0.height / 2) }
        let hashes = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: 10_000)
        defer { hashes.deallocate() }
        let failures = Counter()
        let out = HashSink(hashes)
        DispatchQueue.concurrentPerform(iterations: 10_000) { i in
            do { out.set(i, try PerceptualHash.hash(try Self.distractor(i, seed: specs[i], photos: photoList))) } catch
            { failures.increment() }
        }
        #expect(failures.value == 0)

        let index = try PerceptualHashIndex()
        let originalHashes = try originals.map { try PerceptualHash.hash($0) }
        try index.add(originalHashes)
        try index.add(Array(hashes))
        #expect(index.count == originals.count + 10_000)

        let radius = PerceptualHash.defaultMatchDistance
        let queryHashes = try copies.map { try PerceptualHash.hash($0.image) }
        let found = try index.search(queryHashes, k: 200)
        var hits = 0
        var falseMatches = 0
        var distractorsMatched = Set<Int>()
        var worstCopy = 0
        for (q, copy) in copies.enumerated() {
            let d = PerceptualHash.distance(queryHashes[q], originalHashes[copy.original])
            worstCopy = max(worstCopy, d)
            if found[q].contains(where: { $0.id == copy.original && $0.distance <= radius }) { hits += 1 }
            for m in found[q] where m.id >= originals.count && m.distance <= radius {
                falseMatches += 1
                distractorsMatched.insert(m.id)
            }
        }
        let recall = Double(hits) / Double(copies.count)
        let falsePositiveRate = Double(distractorsMatched.count) / 10_000
        #expect(recall >= 0.99, "recall \(recall); worst copy distance \(worstCopy)")
        #expect(falsePositiveRate <= 0.01, "\(distractorsMatched.count) distractors matched (\(falseMatches) matches)")
        let oneSidedFound = try zip(oneSided, originalHashes + originalHashes).filter {
            PerceptualHash.distance(try PerceptualHash.hash($0.0), $0.1) <= radius
        }.count
        print(
            "pHash: \(copies.count) copies, recall \(recall), worst copy distance \(worstCopy), distractors matched "
                + "\(distractorsMatched.count)/10000 at radius \(radius); one-sided 5 % crops found \(oneSidedFound)/\(oneSided.count)"
        )
    }

    static func distractor(_ i: Int, seed: UInt64, photos: [RGBImage]) throws -> RGBImage {
        var rng = SplitMix64(seed: seed)
        func uniform() -> Double { Double(rng.next() >> 11) * 0x1p-53 }
        switch i % 10 {
        case 0..<4:  // a small crop of a photo
            let p = photos[Int(rng.next() % 3)]
            let s = 0.2 + 0.15 * uniform()
            let x = uniform() * (1 - s)
            let y = uniform() * (1 - s)
            return try crop(p, x, y, x + s, y + s)
        case 4:  // a mirrored large crop (mirrored after the 32×32 downscale the hash makes anyway)
            let p = photos[Int(rng.next() % 3)]
            let s = 0.6 + 0.4 * uniform()
            let x = uniform() * (1 - s)
            let y = uniform() * (1 - s)
            return try mirrored(try Resample.bicubicPIL(try crop(p, x, y, x + s, y + s), width: 32, height: 32))
        case 5..<8:  // a smooth random colour field: a few random pixels upscaled
            let g = 2 + Int(rng.next() % 7)
            let small = try RGBImage(width: g, height: g, pixels: randomBytes(g * g * 3, &rng))
            return try Resample.bicubicPIL(small, width: 32, height: 32)
        default:  // noise
            let side = 16 + Int(rng.next() % 49)
            return try RGBImage(width: side, height: side, pixels: randomBytes(side * side * 3, &rng))
        }
    }

    static func randomBytes(_ count: Int, _ rng: inout SplitMix64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: (count + 7) / 8 * 8)
        out.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for i in words.indices { words[i] = rng.next() }
        }
        return Array(out.prefix(count))
    }

    @Test func hashIsStableAndDiscriminates() throws {
        let chelsea = try RGBImage.load(contentsOf: Fixtures.url("photos/chelsea.png"))
        let coffee = try RGBImage.load(contentsOf: Fixtures.url("photos/coffee.png"))
        let a = try PerceptualHash.hash(chelsea)
        #expect(a == (try PerceptualHash.hash(contentsOf: Fixtures.url("photos/chelsea.png"))))
        #expect(a.nonzeroBitCount == 32)  // the median splits the 64 coefficients in half
        #expect(PerceptualHash.distance(a, try PerceptualHash.hash(coffee)) > 20)
        let dir = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let index = try PerceptualHashIndex()
        try index.add([a, try PerceptualHash.hash(coffee)])
        let file = dir.appendingPathComponent("phash.index")
        try index.write(to: file)
        let loaded = try PerceptualHashIndex(contentsOf: file)
        #expect(try loaded.matches([a]).first?.map(\.id) == [0])
    }

    @Test func tiledL2FollowsCarlini() throws {
        let chelsea = try RGBImage.load(contentsOf: Fixtures.url("photos/chelsea.png"))
        #expect(try TiledL2.distance(generated: chelsea, training: chelsea) == 0)
        // JPEG re-encoding stays far below 0.15; another photo is far above.
        let jpeg = try RGBImage.decode(data: try chelsea.jpegData(quality: 90), name: "re.jpg")
        #expect(try TiledL2.isExtracted(generated: jpeg, training: chelsea))
        let coffee = try RGBImage.load(contentsOf: Fixtures.url("photos/coffee.png"))
        #expect(try !TiledL2.isExtracted(generated: chelsea, training: coffee))
        // One tile changed completely decides the maximum: a 128×128 block set to black in a white image.
        let white = try RGBImage(width: 256, height: 256, pixels: [UInt8](repeating: 255, count: 256 * 256 * 3))
        var pixels = white.pixels
        for y in 128..<256 { for x in 128..<256 { for c in 0..<3 { pixels[(y * 256 + x) * 3 + c] = 0 } } }
        let patched = try RGBImage(width: 256, height: 256, pixels: pixels)
        #expect(abs(try TiledL2.distance(generated: patched, training: white) - 1) < 1e-6)
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() {
        lock.lock()
        count += 1
        lock.unlock()
    }
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
}

struct HashSink: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<UInt64>
    init(_ buffer: UnsafeMutableBufferPointer<UInt64>) { self.buffer = buffer }
    func set(_ i: Int, _ value: UInt64) { buffer[i] = value }
}
