import StockadeCLI

Stockade.startZygote(for: CommandLine.arguments)
// A phase name as argv[0] (`/cnb/lifecycle/detector`) or `stockade lifecycle <phase>`: the lifecycle.
PhaseMain.runIfPhase(CommandLine.arguments)
Stockade.entry()
