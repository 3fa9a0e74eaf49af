# mailspec as a Nix package (`nix run` gives the `mailspec` command) and a development
# shell with what its tests use. The project's CI runs on Debian through .ci/run;
# there, tests/test_packaging.py parses this file and evaluates what needs no download.
#
# What the shell can run, and what it cannot:
# - check, compile, fmt and certs; the unit and property tests; `apply` and the
#   mysql backend's host tier (Postfix and Dovecot are built with their MySQL lookups);
# - not the files backend's host tier: nixpkgs' Postfix has no lmdb lookup table, and
#   that backend's maps are lmdb. Those tests skip outside CI (tests/needs.py);
# - not the VM tier's image build, which runs mmdebstrap against a Debian mirror.
{
  description = "mailspec: a typed language and compiler for Postfix + Dovecot + Sieve mail servers";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
      py = pkgs.python311Packages;
      # pyproject.toml's [project] dependencies; tests/test_packaging.py holds them equal.
      runtime = with py; [ lark attrs jinja2 click idna cryptography pymysql dnspython argon2-cffi bcrypt ];
      mailspec = py.buildPythonApplication {
        pname = "mailspec";
        version = "0.1.0";
        pyproject = true;
        src = self;
        nativeBuildInputs = [ py.setuptools ];
        propagatedBuildInputs = runtime;
        doCheck = false; # the tests need the daemons and root; run them in the shell
      };
      python = pkgs.python311.withPackages (ps: runtime ++ (with ps; [
        setuptools pip paramiko hypothesis pytest pytest-xdist dkimpy
      ]));
    in {
      packages.${system}.default = mailspec;
      apps.${system}.default = { type = "app"; program = "${mailspec}/bin/mailspec"; };

      devShells.${system}.default = pkgs.mkShell {
        packages = [
          python
          (pkgs.postfix.override { withMySQL = true; })
          (pkgs.dovecot.override { withMySQL = true; })
          pkgs.dovecot_pigeonhole pkgs.mariadb pkgs.openssl pkgs.ruff
          pkgs.qemu pkgs.mmdebstrap pkgs.e2fsprogs pkgs.rspamd pkgs.nsd pkgs.bind
        ];
        # An editable install, as pyproject lays the packages out (backends/ becomes
        # mailspec.backends): a plain PYTHONPATH cannot do that. qemu.qmp is not in
        # nixpkgs, so the VM tier needs `pip install qemu.qmp` inside this venv.
        shellHook = ''
          if [ ! -x .venv-nix/bin/python ]; then
            python -m venv --system-site-packages .venv-nix
            .venv-nix/bin/pip install -q --no-deps --no-build-isolation -e .
          fi
          export PATH="$PWD/.venv-nix/bin:$PATH"
        '';
      };
    };
}
