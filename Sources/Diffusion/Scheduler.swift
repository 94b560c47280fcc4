import Checkpoints
import Tensors

/// A diffusers-compatible sampler: turns a model output at one timestep into the next, less noisy sample.
///
/// Usage mirrors diffusers' pipelines:
/// ```
/// var scheduler = try makeScheduler(kind: nil, config: config)
/// try scheduler.setTimesteps(steps)
/// var latents = scale(random.normal(shape: shape), scheduler.initNoiseSigma)
/// for t in scheduler.timesteps {
///     let input = try scheduler.scaleModelInput(latents, timestep: t)
///     let eps = unet(input, Float(t))            // Float(t) is exactly torch's `t.float()`
///     latents = try scheduler.step(modelOutput: eps, timestep: t, sample: latents, random: &random)
/// }
/// ```
/// Values are float32 with each torch operation reproduced in order; they match diffusers to a few ulps (torch's
/// CPU `sqrt`/`exp`/`log` are not correctly rounded, docs/algorithms.md#shared-noise-schedule).
public protocol Scheduler: Sendable {
    /// Which scheduler this is.
    var kind: SchedulerKind { get }
    /// The inference timesteps in the order the model is called (`scheduler.timesteps`), after
    /// `setTimesteps`. Integers for PNDM, DDIM and DPM-Solver; float32 values (possibly fractional) for Euler.
    var timesteps: [Double] { get }
    /// The factor the initial noise is multiplied by (`init_noise_sigma`).
    var initNoiseSigma: Float { get }
    /// Model calls per inference step (`order`, 1 for every scheduler here); the pipeline's warm-up count is
    /// `timesteps.count − numInferenceSteps · order`.
    var order: Int { get }
    /// The step count last given to `setTimesteps` (0 before).
    var numInferenceSteps: Int { get }

    /// Prepares `count` inference steps and resets the stepping state (`set_timesteps(count)`).
    mutating func setTimesteps(_ count: Int) throws

    /// The model input for `sample` at `timestep` (`scale_model_input`).
    func scaleModelInput(_ sample: Tensor, timestep: Double) throws -> Tensor

    /// One denoising step (`step(...).prev_sample`). Stochastic schedulers draw their noise with
    /// `random.normal(shape: modelOutput.shape)` at the point diffusers calls `randn_tensor`.
    mutating func step<R: RandomSource>(modelOutput: Tensor, timestep: Double, sample: Tensor, random: inout R)
        throws -> Tensor
}

extension Scheduler {
    /// The timestep value the UNet embeds (`t.float()` in the pipeline); exact for every scheduler here.
    public func modelTimestep(_ timestep: Double) -> Float { Float(timestep) }
}

/// The schedulers one can pick on the command line; raw values are the CLI names.
public enum SchedulerKind: String, CaseIterable, Sendable {
    case pndm
    case ddim
    case euler
    case eulerAncestral = "euler-a"
    case dpmSolverMultistep = "dpm++2m"

    /// The diffusers class name (`_class_name`).
    public var className: String {
        switch self {
        case .pndm: "PNDMScheduler"
        case .ddim: "DDIMScheduler"
        case .euler: "EulerDiscreteScheduler"
        case .eulerAncestral: "EulerAncestralDiscreteScheduler"
        case .dpmSolverMultistep: "DPMSolverMultistepScheduler"
        }
    }

    /// The kind whose diffusers class is `className`, if any.
    public init?(className: String) {
        guard let k = SchedulerKind.allCases.first(where: { $0.className == className }) else { return nil }
        self = k
    }
}

/// Builds a scheduler from a `scheduler_config.json`.
///
/// `kind == nil` uses the config's `_class_name`. Another kind behaves like diffusers'
/// `OtherScheduler.from_config(config)`: keys the class knows keep the config's values, keys it does not know
/// are ignored, and keys the config lacks take the class's defaults (e.g. an old PNDM config without
/// `timestep_spacing` gives DDIM `leading` but Euler `linspace`; without `clip_sample` DDIM clips).
/// `eta` goes to DDIM only, as the pipeline passes it only to schedulers whose `step` accepts it.
public func makeScheduler(kind: SchedulerKind?, config: SchedulerConfig, eta: Float = 0) throws -> any Scheduler {
    let resolved: SchedulerKind
    if let kind {
        resolved = kind
    } else {
        guard let name = config.className else {
            throw DiffusionError("\(config.source): scheduler config has no _class_name and no scheduler was chosen")
        }
        guard let k = SchedulerKind(className: name) else {
            throw DiffusionError.unsupported(
                "_class_name", name, scheduler: config.source, supported: SchedulerKind.allCases.map(\.className))
        }
        resolved = k
    }
    switch resolved {
    case .pndm: return try PNDMScheduler(config: config)
    case .ddim: return try DDIMScheduler(config: config, eta: eta)
    case .euler: return try EulerDiscreteScheduler(config: config)
    case .eulerAncestral: return try EulerAncestralDiscreteScheduler(config: config)
    case .dpmSolverMultistep: return try DPMSolverMultistepScheduler(config: config)
    }
}
