import ArgumentParser

/// The `varaudit` command: audits Stable Diffusion image-variation models for safety and memorization.
@main
struct VarAudit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "varaudit",
        abstract: "Audit the Stable Diffusion image-variations model for safety and memorization.",
        version: "0.1.0",
        subcommands: [
            Generate.self,
            SafetyCheck.self,
            Concepts.self,
            Embed.self,
            IndexCommand.self,
            PreprocessImages.self,
            Inspect.self,
            Bench.self,
        ]
    )
}
