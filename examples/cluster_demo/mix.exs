defmodule ClusterDemo.MixProject do
  use Mix.Project

  # An application that clusters with NativeGossip and spreads work over the nodes it
  # found, with OTP alone (:pg and GenServer calls). It depends on the library by path,
  # as an application in this repository would on the hex package.
  def project do
    [
      app: :cluster_demo,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      # NATIVE_GOSSIP_PATH: the package a release makes, in release_test.exs.
      deps: [{:native_gossip, path: System.get_env("NATIVE_GOSSIP_PATH", "../..")}],
      releases: [
        cluster_demo: [include_executables_for: [:unix]],
        # The same application without epmd: rel/epmdless/vm.args.eex.
        cluster_demo_epmdless: [
          include_executables_for: [:unix],
          rel_templates_path: "rel/epmdless"
        ]
      ],
      default_release: :cluster_demo
    ]
  end

  def application do
    [extra_applications: [:logger], mod: {ClusterDemo.Application, []}]
  end
end
