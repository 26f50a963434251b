# Install districtmon as a systemd service: see systemd/README.md.
#
#   sudo make install      venv in $(PREFIX), unit, service user, config (first time only)
#   sudo make uninstall    removes what install added; keeps config, ledger and the user
#   make deb               a Debian package of the same tree (packaging/build-deb), in dist/
#
# DESTDIR=/some/dir stages the same tree under /some/dir without touching the running system
# (no user creation, no chown, no systemctl): for packaging, and for tests.

PREFIX      ?= /opt/districtmon
# Fixed: the unit's ConfigurationDirectory= and ExecStart name it.
CONFDIR      = /etc/districtmon
UNITDIR     ?= /usr/local/lib/systemd/system
SYSUSERSDIR ?= /usr/local/lib/sysusers.d
# System Python on purpose: a venv made from it keeps working for any user (the service user
# must be able to read the interpreter) and follows the distribution's security updates.
PYTHON      ?= /usr/bin/python3
# Extra arguments for `pip install` (e.g. --index-url of a local mirror).
PIP_ARGS    ?=
DESTDIR     ?=

SERVICE_USER  = districtmon
SERVICE_GROUP = districtmon
UNIT          = districtmon.service
DOCDIR        = $(PREFIX)/share/doc/districtmon
# Dashboards, their provisioning examples and the Prometheus rules: shared data, for Grafana
# and Prometheus to read (the Debian package puts them in /usr/share/districtmon).
DATADIR      ?= $(PREFIX)/share
# What the wheel is built from (see pyproject.toml); config/ because the package's example
# district (monitor/examples/dienbien) is a link to it.
SOURCES       = pyproject.toml README.md LICENSE MANIFEST.in monitor config

# True (exit 0) when systemd is the running init: what sd_booted(3) checks.
SYSTEMD_BOOTED = test -d /run/systemd/system

.PHONY: help install uninstall deb

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

install:
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" != 0 ]; then \
		echo "make install: run as root (sudo make install), or stage with DESTDIR=..." >&2; \
		exit 1; \
	fi
	@case "$(PREFIX)" in /?*) ;; *) echo "PREFIX must be an absolute path" >&2; exit 1;; esac
	# 1. The program: a venv from the system Python, the project installed from this checkout
	#    (built from a copy, so no build/ leftovers in the checkout end up in the wheel; -L
	#    copies what links point at: monitor/expose/runbooks.md is config/prometheus's).
	$(PYTHON) -m venv "$(DESTDIR)$(PREFIX)"
	set -e; src="$$(mktemp -d)"; trap 'rm -rf "$$src"' EXIT; \
		cp -RL $(SOURCES) "$$src/"; \
		PIP_NO_INPUT=1 "$(DESTDIR)$(PREFIX)/bin/python" -m pip install --quiet \
			--disable-pip-version-check --no-warn-script-location $(PIP_ARGS) "$$src"
	@# A staged venv names its staging path in scripts; point them at the final one.
	@if [ -n "$(DESTDIR)" ]; then \
		grep -rlF "$(DESTDIR)$(PREFIX)" "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/pyvenv.cfg" | \
			xargs -r sed -i "s|$(DESTDIR)$(PREFIX)|$(PREFIX)|g"; \
	fi
	install -d -m 0755 "$(DESTDIR)$(DOCDIR)"
	install -m 0644 README.md "$(DESTDIR)$(DOCDIR)/README.md"
	install -m 0644 config/README.md "$(DESTDIR)$(DOCDIR)/configuration.md"
	install -m 0644 systemd/README.md "$(DESTDIR)$(DOCDIR)/service.md"
	# Grafana dashboards and their provisioning examples; the Prometheus configuration, rules
	# and runbooks; the Alertmanager example and its notification templates.
	install -d -m 0755 "$(DESTDIR)$(DATADIR)/grafana/dashboards" \
		"$(DESTDIR)$(DATADIR)/grafana/provisioning/datasources" \
		"$(DESTDIR)$(DATADIR)/grafana/provisioning/dashboards" \
		"$(DESTDIR)$(DATADIR)/prometheus" \
		"$(DESTDIR)$(DATADIR)/alertmanager/templates"
	install -m 0644 dashboards/*.json "$(DESTDIR)$(DATADIR)/grafana/dashboards/"
	install -m 0644 dashboards/provisioning/datasources/*.yaml \
		"$(DESTDIR)$(DATADIR)/grafana/provisioning/datasources/"
	@# The dashboard provider names the folder it reads: where DATADIR put the dashboards.
	set -e; for f in dashboards/provisioning/dashboards/*.yaml; do \
		sed -e 's|/opt/districtmon/share/|$(DATADIR)/|g' "$$f" \
			>"$(DESTDIR)$(DATADIR)/grafana/provisioning/dashboards/$${f##*/}"; \
		chmod 0644 "$(DESTDIR)$(DATADIR)/grafana/provisioning/dashboards/$${f##*/}"; \
	done
	install -m 0644 config/prometheus/*.yml config/prometheus/runbooks.md \
		"$(DESTDIR)$(DATADIR)/prometheus/"
	install -m 0644 config/alertmanager/alertmanager.yml "$(DESTDIR)$(DATADIR)/alertmanager/"
	install -m 0644 config/alertmanager/templates/*.tmpl \
		"$(DESTDIR)$(DATADIR)/alertmanager/templates/"
	# 2. The unit, with ExecStart and Documentation following PREFIX.
	install -d -m 0755 "$(DESTDIR)$(UNITDIR)"
	sed -e 's|/opt/districtmon/|$(PREFIX)/|g' systemd/$(UNIT) >"$(DESTDIR)$(UNITDIR)/$(UNIT).tmp"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/$(UNIT).tmp"
	mv -f "$(DESTDIR)$(UNITDIR)/$(UNIT).tmp" "$(DESTDIR)$(UNITDIR)/$(UNIT)"
	# 3. The service user (sysusers.d), created now unless staging.
	install -d -m 0755 "$(DESTDIR)$(SYSUSERSDIR)"
	install -m 0644 systemd/districtmon.sysusers "$(DESTDIR)$(SYSUSERSDIR)/districtmon.conf"
	@if [ -z "$(DESTDIR)" ]; then \
		if command -v systemd-sysusers >/dev/null; then \
			echo "systemd-sysusers $(SYSUSERSDIR)/districtmon.conf"; \
			systemd-sysusers "$(SYSUSERSDIR)/districtmon.conf"; \
		elif ! getent passwd $(SERVICE_USER) >/dev/null; then \
			echo "useradd --system $(SERVICE_USER)"; \
			useradd --system --user-group --home-dir /var/lib/districtmon --no-create-home \
				--shell /usr/sbin/nologin --comment "districtmon monitoring daemon" \
				$(SERVICE_USER); \
		fi; \
	fi
	# 4. The configuration: copied only when $(CONFDIR) is missing or empty, never over an
	#    operator's files. root-owned, readable by the service group only (credentials.yaml
	#    holds SNMP communities); the daemon never writes it.
	@set -e; conf="$(DESTDIR)$(CONFDIR)"; \
	if [ -d "$$conf" ] && [ -n "$$(ls -A "$$conf")" ]; then \
		echo "keeping the existing configuration in $$conf"; \
	else \
		echo "installing the example configuration in $$conf"; \
		install -d -m 0750 "$$conf" "$$conf/inventory" "$$conf/mqtt" "$$conf/profiles"; \
		install -m 0640 config/districtmon.yaml config/credentials.yaml config/README.md \
			config/maintenance.yaml "$$conf/"; \
		install -m 0640 config/inventory/*.yaml "$$conf/inventory/"; \
		install -m 0640 config/mqtt/*.yaml "$$conf/mqtt/"; \
		install -m 0640 config/profiles/*.yaml config/profiles/README.md "$$conf/profiles/"; \
		if [ -z "$(DESTDIR)" ]; then \
			chown -R root:$(SERVICE_GROUP) "$$conf"; \
		fi; \
	fi
	@if [ -z "$(DESTDIR)" ] && $(SYSTEMD_BOOTED); then \
		echo "systemctl daemon-reload"; systemctl daemon-reload; \
	fi
	@echo "installed; next: edit $(CONFDIR), then systemctl enable --now $(UNIT)"

uninstall:
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" != 0 ]; then \
		echo "make uninstall: run as root (sudo make uninstall)" >&2; exit 1; \
	fi
	@case "$(PREFIX)" in /?*) ;; *) echo "PREFIX must be an absolute path" >&2; exit 1;; esac
	@if [ -z "$(DESTDIR)" ] && $(SYSTEMD_BOOTED); then \
		echo "systemctl disable --now $(UNIT)"; systemctl disable --now $(UNIT) || true; \
	fi
	rm -f "$(DESTDIR)$(UNITDIR)/$(UNIT)" "$(DESTDIR)$(SYSUSERSDIR)/districtmon.conf"
	@# Only ever a venv that install made: never rm -rf an arbitrary PREFIX.
	@if [ -f "$(DESTDIR)$(PREFIX)/pyvenv.cfg" ]; then \
		echo "rm -rf $(DESTDIR)$(PREFIX)"; rm -rf "$(DESTDIR)$(PREFIX)"; \
	elif [ -e "$(DESTDIR)$(PREFIX)" ]; then \
		echo "$(DESTDIR)$(PREFIX) is not a venv made by make install: left alone" >&2; \
	fi
	@# A DATADIR outside the venv: only the folders install made there.
	@case "$(DATADIR)" in $(PREFIX)/*) ;; *) \
		rm -rf "$(DESTDIR)$(DATADIR)/grafana" "$(DESTDIR)$(DATADIR)/prometheus" \
			"$(DESTDIR)$(DATADIR)/alertmanager"; \
		rmdir "$(DESTDIR)$(DATADIR)" 2>/dev/null || true;; \
	esac
	@if [ -z "$(DESTDIR)" ] && $(SYSTEMD_BOOTED); then \
		echo "systemctl daemon-reload"; systemctl daemon-reload; \
	fi
	@echo "kept: $(CONFDIR) (configuration), /var/lib/districtmon (ledger), user $(SERVICE_USER)"

# The Debian package: `make install DESTDIR=<staging>` with the Debian places, then dpkg-deb.
deb:
	packaging/build-deb dist
