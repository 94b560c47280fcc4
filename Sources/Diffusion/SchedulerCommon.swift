import Checkpoints
import Foundation
import Tensors

/// What the denoising model predicts (`prediction_type`).
public enum PredictionType: String, Sendable, CaseIterable {
    case epsilon
    case vPrediction = "v_prediction"
    case sample
}

/// How inference timesteps are spread over the training timesteps (`timestep_spacing`).
public enum TimestepSpacing: String, Sendable, CaseIterable {
    case leading, linspace, trailing
}

extension DiffusionError {
    /// A scheduler config value we do not support, naming the key.
    static func unsupported(_ key: String, _ value: Any, scheduler: String, supported: [String]) -> DiffusionError {
        DiffusionError(
            "\(scheduler): unsupported \(key) '\(value)' (supported: \(supported.joined(separator: ", ")))")
    }
}

/// The training noise schedule every scheduler shares: betas and `alphas_cumprod`, float32 as torch holds them.
///
/// Matches diffusers' scheduler constructors: `torch.linspace` (float32, torch's two-sided fma formula) for
/// `linear`, its square for `scaled_linear`, `betas_for_alpha_bar` (cosine) for `squaredcos_cap_v2`, or
/// `trained_betas`; `alphas = 1 − betas`; `torch.cumprod` accumulated in double and rounded per prefix.
struct NoiseSchedule: Sendable {
    let trainTimesteps: Int
    /// `beta_schedule` as configured (DPM-Solver's Karras timesteps depend on it).
    let betaScheduleName: String
    let betas: [Float]
    let alphasCumprod: [Float]

    init(config: SchedulerConfig, scheduler: String) throws {
        let n = config.numTrainTimesteps
        guard n >= 2 else { throw DiffusionError("\(scheduler): num_train_timesteps must be ≥ 2, got \(n)") }
        if config.rescaleBetasZeroSnr == true {
            throw DiffusionError("\(scheduler): rescale_betas_zero_snr true is not supported")
        }
        var betas: [Float]
        if let trained = config.trainedBetas {
            guard trained.count == n else {
                throw DiffusionError("\(scheduler): trained_betas has \(trained.count) values for \(n) timesteps")
            }
            betas = trained.map { Float($0) }
        } else {
            switch config.betaSchedule {
            case "linear":
                betas = torchLinspace(Float(config.betaStart), Float(config.betaEnd), count: n)
            case "scaled_linear":
                betas = torchLinspace(
                    Float(config.betaStart.squareRoot()), Float(config.betaEnd.squareRoot()), count: n
                )
                .map { $0 * $0 }
            case "squaredcos_cap_v2":
                func alphaBar(_ t: Double) -> Double {
                    let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
                    return c * c
                }
                betas = (0..<n).map { i in
                    let t1 = Double(i) / Double(n)
                    let t2 = Double(i + 1) / Double(n)
                    return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
                }
            default:
                throw DiffusionError.unsupported(
                    "beta_schedule", config.betaSchedule, scheduler: scheduler,
                    supported: ["linear", "scaled_linear", "squaredcos_cap_v2"])
            }
        }
        var acc = 1.0
        var cumprod = [Float](repeating: 0, count: n)
        for i in 0..<n {
            acc *= Double(1 - betas[i])
            cumprod[i] = Float(acc)
        }
        trainTimesteps = n
        betaScheduleName = config.betaSchedule
        self.betas = betas
        alphasCumprod = cumprod
    }

    /// `((1 − ᾱ) / ᾱ) ** 0.5` per training timestep (the Karras-style sigma table), float32.
    var sigmaTable: [Float] { alphasCumprod.map { ((1 - $0) / $0).squareRoot() } }
}

/// `torch.linspace(start, end, count, dtype=float32)` on CPU: `fma(step, i, start)` for the first half,
/// `fma(−step, count−1−i, end)` for the second, with `step = (end − start) / (count − 1)` in float32.
func torchLinspace(_ start: Float, _ end: Float, count: Int) -> [Float] {
    guard count > 1 else { return count == 1 ? [start] : [] }
    let step = (end - start) / Float(count - 1)
    let half = count / 2
    return (0..<count).map { i in
        i < half ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(count - 1 - i))
    }
}

/// `numpy.linspace(start, stop, count)` in float64: `i·step + start`, the last value exactly `stop`.
func numpyLinspace(_ start: Double, _ stop: Double, count: Int) -> [Double] {
    guard count > 1 else { return count == 1 ? [start] : [] }
    let step = (stop - start) / Double(count - 1)
    var y = (0..<count).map { Double($0) * step + start }
    y[count - 1] = stop
    return y
}

/// `numpy.arange(start, stop, step)` for float64 (length `ceil((stop − start)/step)`, values
/// `start + i·δ` with `δ = (start + step) − start`, as numpy's fill computes them).
func numpyArange(_ start: Double, _ stop: Double, step: Double) -> [Double] {
    let length = Int(((stop - start) / step).rounded(.up))
    guard length > 0 else { return [] }
    let delta = (start + step) - start
    return (0..<length).map { $0 == 0 ? start : start + Double($0) * delta }
}

/// `numpy.interp(x, arange(table.count), table)` in float64.
func numpyInterp(_ x: Double, table: [Float]) -> Double {
    let last = table.count - 1
    if x <= 0 { return Double(table[0]) }
    if x >= Double(last) { return Double(table[last]) }
    let j = Int(x.rounded(.down))
    if x == Double(j) { return Double(table[j]) }
    let slope = Double(table[j + 1]) - Double(table[j])
    return slope * (x - Double(j)) + Double(table[j])
}

/// Karras et al. (2022) sigmas, eq. (5) with ρ = 7, as diffusers' `_convert_to_karras` (float64).
func karrasSigmas(sigmaMin: Double, sigmaMax: Double, count: Int) -> [Double] {
    let rho = 7.0
    let minInv = pow(sigmaMin, 1 / rho)
    let maxInv = pow(sigmaMax, 1 / rho)
    return numpyLinspace(0, 1, count: count).map { pow(maxInv + $0 * (minInv - maxInv), rho) }
}

/// diffusers' `_sigma_to_t`: the (fractional) training timestep of `sigma` by linear interpolation in log σ.
func sigmaToTimestep(_ sigma: Double, logSigmas: [Float]) -> Double {
    let logSigma = log(max(sigma, 1e-10))
    var low = 0
    for (i, l) in logSigmas.enumerated() where logSigma - Double(l) >= 0 { low = i }
    low = min(low, logSigmas.count - 2)
    let lo = Double(logSigmas[low])
    let hi = Double(logSigmas[low + 1])
    let w = min(max((lo - logSigma) / (lo - hi), 0), 1)
    return (1 - w) * Double(low) + w * Double(low + 1)
}

/// Integer inference timesteps of PNDM/DDIM-style schedulers, descending (before PNDM's reordering).
///
/// `leading`: `arange(N)·(T//N) + steps_offset`; `linspace`: `round(linspace(0, T−1, N))`;
/// `trailing`: `round(arange(T, 0, −T/N)) − 1` (numpy rounding: half to even).
func discreteTimesteps(spacing: TimestepSpacing, count: Int, trainTimesteps t: Int, stepsOffset: Int) -> [Int] {
    switch spacing {
    case .leading:
        let ratio = t / count
        return (0..<count).reversed().map { $0 * ratio + stepsOffset }
    case .linspace:
        return numpyLinspace(0, Double(t - 1), count: count).reversed().map {
            Int($0.rounded(.toNearestOrEven))
        }
    case .trailing:
        return numpyArange(Double(t), 0, step: -Double(t) / Double(count)).map {
            Int($0.rounded(.toNearestOrEven)) - 1
        }
    }
}

/// Checks an inference step count against the training schedule.
func validateStepCount(_ count: Int, trainTimesteps: Int, scheduler: String) throws {
    guard count >= 1, count <= trainTimesteps else {
        throw DiffusionError(
            "\(scheduler): num_inference_steps must be in 1...\(trainTimesteps) (num_train_timesteps), got \(count)")
    }
}

/// Reads `prediction_type` and refuses the ones `scheduler` does not implement.
func predictionType(_ config: SchedulerConfig, scheduler: String, supported: [PredictionType]) throws
    -> PredictionType
{
    guard let p = PredictionType(rawValue: config.predictionType), supported.contains(p) else {
        throw DiffusionError.unsupported(
            "prediction_type", config.predictionType, scheduler: scheduler, supported: supported.map(\.rawValue))
    }
    return p
}

/// Reads `timestep_spacing`, taking `classDefault` when the config has none (diffusers' `from_config`).
func timestepSpacing(_ config: SchedulerConfig, default classDefault: TimestepSpacing, scheduler: String) throws
    -> TimestepSpacing
{
    guard let raw = config.timestepSpacing else { return classDefault }
    guard let s = TimestepSpacing(rawValue: raw) else {
        throw DiffusionError.unsupported(
            "timestep_spacing", raw, scheduler: scheduler, supported: TimestepSpacing.allCases.map(\.rawValue))
    }
    return s
}

// MARK: - Element-wise float32 arithmetic (one rounded float32 operation per source-level torch op)

/// `f` applied to each element of `a`.
func elementwise(_ a: Tensor, _ f: (Float) -> Float) -> Tensor {
    var out = Tensor(zeros: a.shape)
    a.withUnsafeBufferPointer { x in
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<o.count { o[i] = f(x[i]) }
        }
    }
    return out
}

/// `f` applied to corresponding elements of `a` and `b` (same shape).
func elementwise(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) throws -> Tensor {
    guard a.shape == b.shape else {
        throw DiffusionError("scheduler: shape mismatch \(a.shape) vs \(b.shape) (model output vs sample)")
    }
    var out = Tensor(zeros: a.shape)
    a.withUnsafeBufferPointer { x in
        b.withUnsafeBufferPointer { y in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<o.count { o[i] = f(x[i], y[i]) }
            }
        }
    }
    return out
}

/// `f` applied to corresponding elements of `a`, `b` and `c` (same shape).
func elementwise(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) throws -> Tensor {
    guard a.shape == b.shape, a.shape == c.shape else {
        throw DiffusionError("scheduler: shape mismatch \(a.shape), \(b.shape), \(c.shape)")
    }
    var out = Tensor(zeros: a.shape)
    a.withUnsafeBufferPointer { x in
        b.withUnsafeBufferPointer { y in
            c.withUnsafeBufferPointer { z in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<o.count { o[i] = f(x[i], y[i], z[i]) }
                }
            }
        }
    }
    return out
}
