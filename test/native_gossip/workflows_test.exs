defmodule NativeGossip.WorkflowsTest do
  # The GitHub workflows parse (PyYAML, as GitHub's parser would reject what it
  # rejects) and say what they must: CI on every push and pull request with the
  # oldest and newest supported Erlang/Elixir and macOS on both architectures; a
  # release workflow, also runnable by hand, with a job building each target of
  # NativeGossip.Native.Target on an image GitHub still runs, uploading its artifacts.
  use ExUnit.Case, async: true

  # Needs python3 with PyYAML: not in the OTP 27 chroot of `make test` (excluded there).
  @moduletag :workflows

  @repo Path.expand("../..", __DIR__)
  # Images GitHub retired (jobs on them stay queued).
  @retired ~w(macos-11 macos-12 macos-13 ubuntu-18.04 ubuntu-20.04 windows-2019)

  defp load!(name) do
    path = Path.join(@repo, ".github/workflows/#{name}")
    python = python_with_yaml!()
    script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
    {json, 0} = System.cmd(python, ["-c", script, path])
    workflow = Jason.decode!(json)
    # YAML 1.1 reads the key `on` as true.
    Map.put_new(workflow, "on", workflow["true"])
  end

  defp python_with_yaml! do
    Enum.find(["python3", "/usr/bin/python3"], fn python ->
      System.find_executable(python) &&
        match?({_, 0}, System.cmd(python, ["-c", "import yaml"], stderr_to_stdout: true))
    end) || flunk("no python3 with PyYAML (apt-get install python3-yaml)")
  end

  defp runs(job), do: Enum.map_join(job["steps"], "\n", &(&1["run"] || ""))
  defp uses(job), do: Enum.map(job["steps"], &(&1["uses"] || ""))
  defp matrix(job), do: job["strategy"]["matrix"]["include"]

  test "ci.yml: every push and pull request; oldest and newest versions; Rust; macOS" do
    ci = load!("ci.yml")
    assert Map.has_key?(ci["on"], "push") and Map.has_key?(ci["on"], "pull_request")

    %{"rust" => rust, "test" => test, "macos" => macos} = ci["jobs"]
    assert runs(rust) =~ "cargo fmt --all -- --check"
    assert runs(rust) =~ "cargo clippy --workspace --all-targets -- -D warnings"
    assert runs(rust) =~ "cargo test -p native_gossip_core"
    assert runs(rust) =~ ".ci/nif-artifact.sh"

    versions = Enum.map(matrix(test), &{&1["otp"], &1["elixir"]})
    assert Enum.any?(versions, fn {otp, ex} -> otp =~ ~r/^25/ and ex =~ ~r/^1\.14/ end)
    assert Enum.any?(versions, fn {otp, ex} -> otp =~ ~r/^2[7-9]/ and ex =~ ~r/^1\.1[89]/ end)
    assert runs(test) =~ "private_net.sh mix test"

    assert Enum.sort(Enum.map(matrix(macos), & &1["os"])) == ["macos-15", "macos-15-intel"]
    assert runs(macos) =~ "cargo test -p native_gossip_core"
    assert runs(macos) =~ "cargo build --release -p native_gossip_nif"
    assert runs(macos) =~ ".ci/loopback-join.exs"

    for {_, job} <- ci["jobs"],
        os <- [job["runs-on"] | Enum.map(matrix(job) || [], & &1["os"])],
        is_binary(os) and not String.contains?(os, "${{") do
      refute os in @retired
    end
  end

  test "release.yml: by tag or by hand; a job per target, on current images; artifacts" do
    release = load!("release.yml")
    assert release["on"]["push"]["tags"] == ["v*"]
    assert Map.has_key?(release["on"], "workflow_dispatch")

    %{"nif" => nif} = release["jobs"]
    jobs = matrix(nif)
    targets = Enum.map(jobs, & &1["target"])
    assert Enum.sort(targets) == Enum.sort(NativeGossip.Native.Target.targets())
    assert length(targets) == length(Enum.uniq(targets))

    for job <- jobs do
      refute job["os"] in @retired, "#{job["target"]} on the retired #{job["os"]}"
      assert job["os"] =~ if(job["target"] =~ "apple", do: ~r/^macos-/, else: ~r/^ubuntu-/)
      # gnu: linked against the glibc floor (cargo-zigbuild, in .ci/nif-artifact.sh).
      if job["target"] =~ "linux-gnu", do: assert(job["tool"] == "zigbuild")
    end

    # The Apple jobs build natively, on an image of their architecture.
    assert Enum.find(jobs, &(&1["target"] == "x86_64-apple-darwin"))["os"] =~ "intel"
    refute Enum.find(jobs, &(&1["target"] == "aarch64-apple-darwin"))["os"] =~ "intel"

    assert runs(nif) =~ "sh .ci/nif-artifact.sh"
    assert "actions/upload-artifact@v4" in uses(nif)
    assert "softprops/action-gh-release@v2" in uses(nif)
  end
end
