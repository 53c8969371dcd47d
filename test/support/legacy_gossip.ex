defmodule NativeGossip.LegacyGossip do
  @moduledoc false
  # A reference sender and receiver of libcluster's Gossip heartbeats, written from the
  # format's description (../shared/notes/libcluster.md), to stand for a node that still
  # runs libcluster during a migration: it binds 0.0.0.0 on the port, joins the group,
  # sends `"heartbeat::" <> term_to_binary(%{node: node()})` (with a secret: a random
  # IV, then AES-256-CBC under SHA-256(secret) of that, PKCS#7-padded) every `every`
  # ms, and connects to every node it hears, as libcluster does.

  use GenServer

  @libcluster_group {233, 252, 1, 32}

  def start(opts \\ []), do: GenServer.start(__MODULE__, opts, name: __MODULE__)
  def stop, do: GenServer.stop(__MODULE__)
  def heard, do: GenServer.call(__MODULE__, :heard)

  @impl true
  def init(opts) do
    port = Keyword.get(opts, :port, 45_892)
    group = Keyword.get(opts, :group, @libcluster_group)

    {:ok, socket} =
      :gen_udp.open(port, [
        :binary,
        active: true,
        ip: {0, 0, 0, 0},
        reuseaddr: true,
        multicast_loop: true,
        multicast_ttl: 1,
        add_membership: {group, {0, 0, 0, 0}}
      ])

    state = %{
      socket: socket,
      port: port,
      group: group,
      secret: Keyword.get(opts, :secret),
      every: Keyword.get(opts, :every, 300),
      heard: MapSet.new()
    }

    send(self(), :heartbeat)
    {:ok, state}
  end

  @impl true
  def handle_call(:heard, _from, state), do: {:reply, MapSet.to_list(state.heard), state}

  @impl true
  def handle_info(:heartbeat, state) do
    :ok = :gen_udp.send(state.socket, state.group, state.port, packet(node(), state.secret))
    Process.send_after(self(), :heartbeat, state.every)
    {:noreply, state}
  end

  def handle_info({:udp, _socket, _ip, _port, data}, state) do
    case decode(data, state.secret) do
      {:ok, %{node: n}} when is_atom(n) and n != node() ->
        Node.connect(n)
        {:noreply, %{state | heard: MapSet.put(state.heard, n)}}

      _ ->
        {:noreply, state}
    end
  end

  @doc "A heartbeat as libcluster's Gossip sends it."
  def packet(node, nil), do: "heartbeat::" <> :erlang.term_to_binary(%{node: node})

  def packet(node, secret) do
    iv = :crypto.strong_rand_bytes(16)
    iv <> encrypt(packet(node, nil), secret, iv)
  end

  def encrypt(plaintext, secret, iv) do
    pad = 16 - rem(byte_size(plaintext), 16)
    padded = plaintext <> :binary.copy(<<pad>>, pad)
    :crypto.crypto_one_time(:aes_256_cbc, :crypto.hash(:sha256, secret), iv, padded, true)
  end

  @doc "Decodes a heartbeat as libcluster's Gossip does (binary_to_term included)."
  def decode("heartbeat::" <> term, nil), do: {:ok, :erlang.binary_to_term(term)}

  def decode(<<iv::binary-size(16), ciphertext::binary>>, secret)
      when is_binary(secret) and rem(byte_size(ciphertext), 16) == 0 and ciphertext != "" do
    key = :crypto.hash(:sha256, secret)
    padded = :crypto.crypto_one_time(:aes_256_cbc, key, iv, ciphertext, false)
    pad = :binary.last(padded)

    with true <- pad in 1..16,
         <<plain::binary-size(byte_size(padded) - pad), _::binary>> <- padded,
         "heartbeat::" <> term <- plain do
      {:ok, :erlang.binary_to_term(term)}
    else
      _ -> :error
    end
  end

  def decode(_, _), do: :error
end
