[
  inputs: [
    "{mix,.formatter}.exs",
    "{config,lib,test,bench}/**/*.{ex,exs}",
    ".ci/*.exs",
    "examples/*/mix.exs",
    "examples/*/{config,lib}/**/*.{ex,exs}"
  ]
]
