import ArgumentParser
import VariationAudit

/// The `varaudit` command: audits Stable Diffusion image-variation models for safety and memorization.
@main
struct VarAudit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "varaudit",
        abstract: "Audit the Stable Diffusion image-variations model for safety and memorization.",
        version: VariationAuditVersion.current,
        subcommands: [
            DemoCommand.self,
            Audit.self,
            Query.self,
            Runs.self,
            Report.self,
            Compare.self,
            Merge.self,
            Generate.self,
            SafetyCheck.self,
            Concepts.self,
            Embed.self,
            Tokenize.self,
            IndexCommand.self,
            PreprocessImages.self,
            Inspect.self,
            Bench.self,
        ]
    )
}
