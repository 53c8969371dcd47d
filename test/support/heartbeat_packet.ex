defmodule NativeGossip.HeartbeatPacket do
  @moduledoc false
  # Builds v1 heartbeats from the description in docs/PROTOCOL.md, independently of the
  # Rust encoder, so that tests check the documented format and can forge packets.

  import Bitwise

  @leaving 0b001
  @joining 0b010
  @signed 0b100

  def build(name, opts \\ []) do
    incarnation = Keyword.get(opts, :incarnation, 1)
    sequence = Keyword.get(opts, :sequence, 1)
    timestamp = Keyword.get(opts, :timestamp, System.system_time(:millisecond))
    secret = Keyword.get(opts, :secret)

    flags =
      if(Keyword.get(opts, :leaving, false), do: @leaving, else: 0) |||
        if(Keyword.get(opts, :joining, false), do: @joining, else: 0) |||
        if(secret, do: @signed, else: 0)

    # Options as docs/PROTOCOL.md lays them out: the label (type 1), then the tags
    # (type 2: key length, key, value), in the order given.
    cluster =
      case Keyword.get(opts, :cluster) do
        nil -> <<>>
        label -> <<1, byte_size(label), label::binary>>
      end

    tags =
      for {k, v} <- Keyword.get(opts, :tags, []), into: <<>> do
        <<2, 1 + byte_size(k) + byte_size(v), byte_size(k), k::binary, v::binary>>
      end

    # The sender's own addresses (type 4), which a receiver with a secret requires the
    # source to be among: by default, with a secret, this host's loopback address (what
    # the tests send from).
    addresses =
      case Keyword.get(opts, :addresses, if(secret, do: [{127, 0, 0, 1}], else: [])) do
        list ->
          for ip <- list, into: <<>> do
            bytes =
              if tuple_size(ip) == 4,
                do: :erlang.list_to_binary(Tuple.to_list(ip)),
                else: for(x <- Tuple.to_list(ip), into: <<>>, do: <<x::16>>)

            <<4, byte_size(bytes), bytes::binary>>
          end
      end

    options = cluster <> tags <> addresses

    body =
      <<"NGSP", 1, flags, byte_size(name), 0, incarnation::64, sequence::64, timestamp::64,
        byte_size(options)::16, name::binary, options::binary>>

    if secret, do: body <> :crypto.mac(:hmac, :sha256, secret, body), else: body
  end

  @doc "Opens a socket that sends to the group (multicast loop on, inside the namespace)."
  def sender do
    {:ok, socket} = :gen_udp.open(0, [:binary, multicast_loop: true, multicast_ttl: 1])
    socket
  end

  def send(socket, port, packet, group \\ NativeGossip.Options.default_group()) do
    :ok = :gen_udp.send(socket, group, port, packet)
  end

  @doc "Opens a sender, sends `packets` to the group, closes it (for one :peer.call)."
  def send_all(port, packets) do
    socket = sender()
    Enum.each(packets, &__MODULE__.send(socket, port, &1))
    :gen_udp.close(socket)
  end
end
