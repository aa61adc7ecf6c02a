"""The Genesys selector: design valuation from scaling fits, quadrants, annealed exploration,
successive-halving verification budgets, and the ProgramDatabase that holds it all."""
