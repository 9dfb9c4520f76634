import StockadeCLI

Stockade.entry()
