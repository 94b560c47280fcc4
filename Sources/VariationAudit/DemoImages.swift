import Foundation
import Imaging
import Tensors

/// Procedural pictures for `varaudit demo`: flat-colour scenes (gradients, rings, stripes, dots, waves) that
/// differ in colour and layout, so that the demo needs no photographs.
enum DemoImages {
    typealias Color = (r: Double, g: Double, b: Double)

    typealias Generator = SplitMix64

    /// The named inputs of the demo, in a fixed order.
    static let inputNames = [
        "bullseye", "candy", "checker", "desert", "forest", "night", "ocean", "sunset", "warning-sign",
        "warning-tape",
    ]

    /// A `size`×`size` scene.
    static func scene(_ name: String, size: Int = 128) throws -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        let s = Double(size)
        func put(_ x: Int, _ y: Int, _ c: Color) {
            let i = (y * size + x) * 3
            pixels[i] = UInt8(max(0, min(255, (c.r * 255).rounded())))
            pixels[i + 1] = UInt8(max(0, min(255, (c.g * 255).rounded())))
            pixels[i + 2] = UInt8(max(0, min(255, (c.b * 255).rounded())))
        }
        func mix(_ a: Color, _ b: Color, _ t: Double) -> Color {
            (a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t)
        }
        for y in 0..<size {
            for x in 0..<size {
                let u = Double(x) / s
                let v = Double(y) / s
                let c: Color
                switch name {
                case "bullseye":
                    let r = ((u - 0.5) * (u - 0.5) + (v - 0.5) * (v - 0.5)).squareRoot()
                    c = Int(r * 12) % 2 == 0 ? (0.85, 0.1, 0.1) : (0.97, 0.97, 0.95)
                case "candy":
                    let du = (u * 6).truncatingRemainder(dividingBy: 1) - 0.5
                    let dv = (v * 6).truncatingRemainder(dividingBy: 1) - 0.5
                    c = du * du + dv * dv < 0.09 ? (0.2, 0.85, 0.9) : (0.98, 0.6, 0.8)
                case "checker":
                    c = (Int(u * 8) + Int(v * 8)) % 2 == 0 ? (0.05, 0.05, 0.05) : (0.95, 0.95, 0.95)
                case "desert":
                    let dune = 0.55 + 0.08 * sin(u * 9) + 0.05 * sin(u * 23 + 1)
                    c = v < dune ? mix((0.55, 0.75, 0.95), (0.95, 0.9, 0.8), v / dune) : (0.85, 0.65, 0.35)
                case "forest":
                    let trunk = Int(u * 10) % 3 == 0 && v > 0.55
                    let canopy = sin(u * 30) * 0.1 + 0.5 > v
                    c = trunk ? (0.35, 0.22, 0.1) : (canopy ? (0.1, 0.45 + 0.2 * v, 0.15) : (0.7, 0.85, 0.7))
                case "night":
                    let hash = (x &* 73_856_093) ^ (y &* 19_349_663)
                    c = hash % 97 == 0 ? (1, 1, 0.9) : mix((0.02, 0.02, 0.12), (0.1, 0.05, 0.25), v)
                case "ocean":
                    let wave = 0.5 + 0.5 * sin(u * 14 + v * 30)
                    c = mix((0.0, 0.2, 0.5), (0.2, 0.6, 0.85), wave * (1 - v) + v * 0.3)
                case "sunset":
                    let sun = (u - 0.5) * (u - 0.5) + (v - 0.62) * (v - 0.62) < 0.02
                    c =
                        sun
                        ? (1, 0.85, 0.3)
                        : (v > 0.65 ? (0.2, 0.1, 0.25) : mix((0.45, 0.2, 0.55), (1, 0.55, 0.2), v / 0.65))
                case "warning-sign", "warning-tape":
                    c = hazard(sign: name == "warning-sign", u: u, v: v, light: (0.98, 0.82, 0.05), shift: 0)
                default:
                    c = (0.5, 0.5, 0.5)
                }
                put(x, y, c)
            }
        }
        return try RGBImage(width: size, height: size, pixels: pixels)
    }

    /// A random scene for the training set: a two-colour gradient with a few discs, bars or stripes.
    static func random(_ g: inout Generator, size: Int = 128) throws -> RGBImage {
        let top = g.color()
        let bottom = g.color()
        var shapes: [(kind: Int, x: Double, y: Double, r: Double, c: Color)] = []
        for _ in 0..<(2 + Int(g.next() % 4)) {
            shapes.append((Int(g.next() % 3), g.unit(), g.unit(), 0.08 + 0.25 * g.unit(), g.color()))
        }
        let stripes = g.unit() < 0.3 ? 3 + Int(g.next() % 8) : 0
        let stripeColor = g.color()
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                let u = Double(x) / Double(size)
                let v = Double(y) / Double(size)
                var c: Color = (
                    top.r + (bottom.r - top.r) * v, top.g + (bottom.g - top.g) * v, top.b + (bottom.b - top.b) * v
                )
                if stripes > 0, Int(u * Double(stripes) * 2) % 2 == 0 { c = stripeColor }
                for s in shapes {
                    let inside: Bool
                    switch s.kind {
                    case 0: inside = (u - s.x) * (u - s.x) + (v - s.y) * (v - s.y) < s.r * s.r
                    case 1: inside = abs(u - s.x) < s.r && abs(v - s.y) < s.r / 3
                    default: inside = abs(u - s.x) < s.r / 3 && abs(v - s.y) < s.r
                    }
                    if inside { c = s.c }
                }
                let i = (y * size + x) * 3
                pixels[i] = UInt8((c.r * 255).rounded())
                pixels[i + 1] = UInt8((c.g * 255).rounded())
                pixels[i + 2] = UInt8((c.b * 255).rounded())
            }
        }
        return try RGBImage(width: size, height: size, pixels: pixels)
    }

    /// The hazard pattern of the `warning-sign` (diagonal stripes in a diamond) or `warning-tape` (stripes the
    /// other way, edge to edge) input, in colour `light` on black, the stripes moved by `shift`.
    static func hazard(sign: Bool, u: Double, v: Double, light: Color, shift: Double) -> Color {
        let angle = sign ? 1.0 : -1.0
        let band = Int(((u + angle * v + shift) * 7 + 20).rounded(.down))
        let inside = !sign || abs(u - 0.5) + abs(v - 0.5) < 0.42
        return inside ? (band % 2 == 0 ? light : (0.05, 0.05, 0.05)) : (0.9, 0.9, 0.92)
    }

    /// An example picture for the demo's "hazard stripes" concept: one of the two hazard patterns in another
    /// colour (amber, orange or red), slightly moved; never one of the inputs themselves.
    static func stripes(_ g: inout Generator, size: Int = 128) throws -> RGBImage {
        let sign = g.unit() < 0.5
        let lights: [Color] = [(0.98, 0.65, 0.05), (0.95, 0.45, 0.1), (0.85, 0.15, 0.1)]
        let light = lights[Int(g.next() % 3)]
        let shift = (g.unit() - 0.5) * 0.04
        var pixels = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                let c = hazard(
                    sign: sign, u: Double(x) / Double(size), v: Double(y) / Double(size), light: light, shift: shift)
                let i = (y * size + x) * 3
                pixels[i] = UInt8((c.r * 255).rounded())
                pixels[i + 1] = UInt8((c.g * 255).rounded())
                pixels[i + 2] = UInt8((c.b * 255).rounded())
            }
        }
        return try RGBImage(width: size, height: size, pixels: pixels)
    }

    /// How a planted copy is made from its original.
    enum Transform: String, CaseIterable {
        case jpeg = "re-encoded as JPEG quality 60"
        case resize = "resized to 75%"
        case crop = "centre-cropped to 85%"
        case resizeJPEG = "resized to 75% and re-encoded as JPEG quality 75"

        func apply(_ image: RGBImage) throws -> RGBImage {
            switch self {
            case .jpeg:
                return try RGBImage.decode(data: try image.jpegData(quality: 60), name: "<jpeg copy>")
            case .resize:
                return try Resample.bicubicPIL(
                    image, width: max(1, image.width * 3 / 4), height: max(1, image.height * 3 / 4))
            case .resizeJPEG:
                let small = try Transform.resize.apply(image)
                return try RGBImage.decode(data: try small.jpegData(quality: 75), name: "<jpeg copy>")
            case .crop:
                let w = image.width * 85 / 100
                let h = image.height * 85 / 100
                let x0 = (image.width - w) / 2
                let y0 = (image.height - h) / 2
                var pixels = [UInt8](repeating: 0, count: w * h * 3)
                for y in 0..<h {
                    let src = ((y + y0) * image.width + x0) * 3
                    pixels.replaceSubrange((y * w * 3)..<((y + 1) * w * 3), with: image.pixels[src..<(src + w * 3)])
                }
                return try RGBImage(width: w, height: h, pixels: pixels)
            }
        }
    }
}

extension SplitMix64 {
    /// A random colour for the demo's scenes.
    mutating func color() -> DemoImages.Color { (unit(), unit(), unit()) }
}
