# VM test: both services come up through socket activation, a streamed completion goes
# uconsole (orchestrator) -> vps (backend, a tiny GGUF), the backend idles out and comes back,
# and the firewall keeps the ports off every interface but the "tailnet".
#
# No Tailscale in a VM test (no network): vlan 1 plays the tailnet (eth1 on both machines,
# named as tailnetInterface), vlan 2 (eth2) is a public network the `outsider` sits on.
{ self, pkgs }:
let
  tinyModel = pkgs.callPackage ./tiny-model.nix { };
  backendKey = "test-backend-key";
  clientKey = "test-client-key";
in
pkgs.testers.runNixOSTest {
  name = "cerebrum-services";

  nodes = {
    vps =
      { lib, ... }:
      {
        imports = [ self.nixosModules.backend ];
        virtualisation.vlans = [
          1
          2
        ];
        virtualisation.memorySize = 2048;
        networking.interfaces.eth2.ipv4.addresses = lib.mkForce [
          {
            address = "10.2.0.1";
            prefixLength = 24;
          }
        ];
        environment.etc."cerebrum/api-keys".text = "${backendKey}\n";
        services.cerebrum-backend = {
          enable = true;
          listenAddress = "0.0.0.0";
          apiKeyFile = "/etc/cerebrum/api-keys";
          tailnetInterface = "eth1";
          idleExit = 10;
          # Checked here, on x86_64 (off by default).
          memoryDenyWriteExecute = true;
          defaultModel = "tiny";
          models = lib.mkForce {
            tiny = {
              file = tinyModel;
              nCtx = 2048;
              threads = 1;
              chatFormat = "chatml";
            };
          };
        };
      };

    uconsole =
      { lib, ... }:
      {
        imports = [ self.nixosModules.orchestrator ];
        virtualisation.vlans = [
          1
          2
        ];
        networking.interfaces.eth2.ipv4.addresses = lib.mkForce [
          {
            address = "10.2.0.3";
            prefixLength = 24;
          }
        ];
        environment.etc."cerebrum/api-keys".text = "${clientKey}\n";
        environment.etc."cerebrum/vps-key".text = "${backendKey}\n";
        environment.systemPackages = [ pkgs.curl ];
        services.cerebrum-orchestrator = {
          enable = true;
          listenAddress = "0.0.0.0";
          apiKeyFile = "/etc/cerebrum/api-keys";
          upstream = "http://vps:9000";
          upstreamApiKeyFile = "/etc/cerebrum/vps-key";
          tailnetInterface = "eth1";
          routes = {
            qwen = "tiny";
            codellama = "tiny";
          };
          routeContext = 2048;
        };
      };

    outsider =
      { lib, ... }:
      {
        virtualisation.vlans = [ 2 ];
        networking.interfaces.eth1.ipv4.addresses = lib.mkForce [
          {
            address = "10.2.0.2";
            prefixLength = 24;
          }
        ];
        environment.systemPackages = [ pkgs.curl ];
      };
  };

  testScript = ''
    import json

    start_all()
    vps.wait_for_unit("cerebrum-backend.socket")
    uconsole.wait_for_unit("cerebrum-orchestrator.socket")
    outsider.wait_for_unit("multi-user.target")

    with subtest("socket activation: nothing runs before the first connection"):
        vps.fail("systemctl is-active cerebrum-backend.service")
        uconsole.fail("systemctl is-active cerebrum-orchestrator.service")

    body = json.dumps({
        "messages": [{"role": "user", "content": "Explain this:\n```python\ndef f():\n    return 1\n```"}],
        "stream": True,
        "max_tokens": 8,
    })

    def stream():
        return uconsole.succeed(
            "curl -sS -N --fail --max-time 120 "
            "-H 'Authorization: Bearer ${clientKey}' -H 'Content-Type: application/json' "
            f"-d '{body}' http://127.0.0.1:7000/v1/chat/completions"
        )

    with subtest("a streamed completion through the orchestrator to the backend"):
        out = stream()
        assert out.rstrip().endswith("data: [DONE]"), out
        assert '"cerebrum"' in out, out
        vps.succeed("systemctl is-active cerebrum-backend.service")
        uconsole.succeed("systemctl is-active cerebrum-orchestrator.service")

    with subtest("the backend exits when idle and the socket starts it again"):
        vps.wait_until_fails("systemctl is-active cerebrum-backend.service", timeout=60)
        vps.succeed("systemctl is-active cerebrum-backend.socket")
        assert stream().rstrip().endswith("data: [DONE]")

    with subtest("keys: the backend refuses a request without one"):
        uconsole.succeed(
            "test $(curl -s -o /dev/null -w '%{http_code}' http://vps:9000/v1/models) = 401"
        )

    with subtest("firewall: the ports are open on the tailnet interface only"):
        uconsole.succeed("curl -sS --fail --max-time 10 http://vps:9000/health")
        outsider.succeed("ping -c 1 -W 5 10.2.0.1")
        outsider.fail("curl -sS --max-time 5 http://10.2.0.1:9000/health")
        outsider.succeed("ping -c 1 -W 5 10.2.0.3")
        outsider.fail("curl -sS --max-time 5 http://10.2.0.3:7000/health")
        vps.succeed("curl -sS --fail --max-time 10 http://127.0.0.1:9000/health")
  '';
}
