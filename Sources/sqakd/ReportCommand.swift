import ArgumentParser
import Bench
import Foundation

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Rebuild tables (Markdown, CSV), plots (PNG) and REPORT.md from the run records alone.",
        discussion: "Writes <results>/<suite>/{table.md,table.csv,cells.csv,plots/*.png} for every suite with finished runs, and REPORT.md. With no suite given, every suites/*.yaml.")

    @Argument(help: "Suite files or names under suites/ (default: all of suites/*.yaml).") var suites: [String] = []
    @Option(help: "Results root.") var results: String = "results"
    @Option(help: "Show only this budget's runs (default: per cell, the largest budget with finished runs).") var budget: String?
    @Option(help: "The generated report file; 'none' writes only the per-suite files.") var output: String = "REPORT.md"

    func run() throws {
        var names = suites
        if names.isEmpty {
            let files = ((try? FileManager.default.contentsOfDirectory(atPath: "suites")) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
            guard !files.isEmpty else { throw SuiteError("no suites given and none found in suites/ (run from the repository root, or name suite files)") }
            names = files.map { "suites/\($0)" }
        }
        let loaded = try names.map { try Suite.load(try Suite.locate($0)) }
        let report = Report(suites: loaded, resultsRoot: URL(fileURLWithPath: results),
                            reportFile: output == "none" ? nil : URL(fileURLWithPath: output), budget: budget)
        let written = try report.write()
        for url in written { print("wrote \(url.path.replacingOccurrences(of: FileManager.default.currentDirectoryPath + "/", with: ""))") }
    }
}

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Regression gate: compare a suite's results with stored ones; non-zero exit naming the cells that moved.",
        discussion: "A cell fails when |new mean − stored mean| > max(SIGMAS × stored seed std, FLOOR) for its best-epoch or last-epoch test top-1. Cells run at different budgets are not compared.")

    @Argument(help: "Suite file, or a name under suites/.") var suite: String
    @Option(help: "Stored results: a cells.csv written by `sqakd report`, a suite results folder, or a results root.") var against: String
    @Option(help: "Results root holding the new runs.") var results: String = "results"
    @Option(help: "Compare only this budget's runs.") var budget: String?
    @Option(help: "Tolerance in stored standard deviations.") var sigmas: Double = 2
    @Option(help: "Smallest tolerance, in accuracy points.") var floor: Double = 0.5

    func run() throws {
        guard sigmas >= 0, floor >= 0, sigmas.isFinite, floor.isFinite else { throw ValidationError("--sigmas and --floor must be finite and ≥ 0") }
        let s = try Suite.load(try Suite.locate(suite))
        let new = RegressionCheck.numbers(try SuiteResults.load(suite: s, resultsRoot: URL(fileURLWithPath: results), budget: budget))
        let stored = try RegressionCheck.stored(against, suite: s, budget: budget)
        let outcome = RegressionCheck(sigmas: sigmas, floor: floor).compare(new: new, stored: stored)
        print("check \(s.name): \(new.count) new cells against \(stored.count) stored (\(against)); tolerance max(\(sigmas)σ, \(floor)) points")
        for l in outcome.lines { print(l) }
        if outcome.compared == 0 {
            print("check failed: no cell could be compared")
            throw ExitCode(1)
        }
        if !outcome.failed.isEmpty {
            print("check failed: \(outcome.failed.count) cell(s) outside the stored spread: " + outcome.failed.map(\.description).joined(separator: "; "))
            throw ExitCode(1)
        }
        print("check passed: \(outcome.compared) cell(s) within the stored spread")
    }
}
