# The README's two commands: `make example` and `make test`. Both install
# what they need from Debian's packages first, so a fresh Debian 12 works.
SHELL := /bin/bash
SWIFT ?= $(shell command -v swift || echo /opt/swift/usr/bin/swift)
RELEASE := .build/release/stockade
# Static Swift stdlib: no shared Swift libraries to load makes every
# `stockade exec` start about 1 ms sooner. Concrete generic types get direct
# metadata accessors instead of mangled names the runtime demangles and checks
# against every conformance record at first use: a fifth fewer instructions
# before the first clone (bench/README.md, session 8).
RELEASE_FLAGS := -c release --static-swift-stdlib --disable-local-rpath \
	-Xswiftc -Xfrontend -Xswiftc -disable-concrete-type-metadata-mangled-name-accessors

# libseccomp-dev and libcap-dev to build; uidmap (newuidmap) for subordinate
# id ranges; gcc builds the tests' static probe; bubblewrap and hyperfine for bench/.
# libarchive-dev and zlib1g-dev: libarchive is linked statically; libzstd1 and
# libssl3 (libcrypto, loaded when images are hashed) at run time; libcurl4
# (loaded when a registry is first contacted) at run time. libstdc++-12-dev: the release
# binary links libstdc++ statically (scripts/static-libs.sh).
BUILD_PACKAGES := libstdc++-12-dev libseccomp-dev libcap-dev libarchive-dev zlib1g-dev libzstd1 libssl3 libcurl4 gcc libc6-dev uidmap util-linux passwd
# Tools nobody here wrote read what stockade exports: skopeo, umoci, runc.
# busybox-static makes the run image (example and tests), from Debian, at that moment.
IMAGE_PACKAGES := skopeo umoci runc busybox-static
# The tests craft hostile images (and a hostile registry) with python3 and count syscalls
# with strace; they start their own docker-registry (htpasswd from apache2-utils, a
# certificate from openssl) on a loopback port; debootstrap makes the Debian build image
# (cached in /var/cache/stockade-tests) a builder test runs on; zsh, fish and groff check
# the completions and man pages `make install` writes.
TEST_PACKAGES := python3 strace docker-registry apache2-utils openssl debootstrap zsh fish groff-base
BENCH_PACKAGES := bubblewrap hyperfine strace openssl time docker-registry skopeo

.PHONY: deps bench-deps build test mutate example bench profiles fuzz-short fuzz clean install install-built uninstall lifecycle-image

deps:
	@bash scripts/install-packages.sh $(BUILD_PACKAGES) $(IMAGE_PACKAGES) $(TEST_PACKAGES)

bench-deps: deps
	@bash scripts/install-packages.sh $(BENCH_PACKAGES)

build: deps
	@bash scripts/static-libs.sh .build/static-libs
	$(SWIFT) build $(RELEASE_FLAGS) --product stockade
	@bash scripts/check-release-binary.sh $(RELEASE)
	$(SWIFT) build $(RELEASE_FLAGS) --product stockade-launcher

# Stockade as a lifecycle image (kpack's ClusterLifecycle, pack's --lifecycle-image): an OCI
# layout in .build/lifecycle-image, tag latest. umoci writes it; run as root so its files are root's.
lifecycle-image: build
	bash scripts/lifecycle-image.sh .build/lifecycle-image latest .build/release

# The tests run the launcher that images carry; it is not a test dependency
# (its static link flags would reach the test bundle), so it is built first.
test: deps
	$(SWIFT) build --product stockade-launcher
	$(SWIFT) test

# Breaks each security claim on purpose (scripts/mutations.txt) and checks that its tests
# fail; MUTATIONS="id ..." picks some, MUTATE_SHARD=K/N a rotation's share.
mutate: deps
	@bash scripts/mutate.sh $(if $(MUTATE_SHARD),--shard $(MUTATE_SHARD)) $(MUTATIONS)

example: build
	@bash examples/run-example.sh $(RELEASE)

bench: bench-deps build
	@bash bench/exec-startup.sh $(RELEASE)
	@bash bench/detect-100.sh $(RELEASE)
	@bash bench/audit.sh $(RELEASE)
	@bash bench/export.sh $(RELEASE)
	@bash bench/concurrent.sh $(RELEASE)
	@bash bench/registry.sh $(RELEASE)

# libFuzzer over the parsers of untrusted input and the terminal filter
# (scripts/fuzz.sh, bench/fuzz.md): 25 s per target for CI, or FUZZ_SECONDS
# per target with `make fuzz`. Built apart from the normal build, in .build-fuzz.
fuzz-short: deps
	bash scripts/fuzz.sh all 25

FUZZ_SECONDS ?= 600
fuzz: deps
	bash scripts/fuzz.sh all $(FUZZ_SECONDS)

# `make install PREFIX=/usr/local` (DESTDIR stages a package): stockade and the launcher in bin/
# (stockade looks for the launcher beside itself), completions for bash, zsh and fish and man pages,
# all generated from the built binary's own help, and the lifecycle's phase names under
# lib/stockade/lifecycle/ as links to stockade, in the place the reference lifecycle keeps them
# (/cnb/lifecycle/). `make install-built BUILT=.build/debug` installs what is already built.
PREFIX ?= /usr/local
DESTDIR ?=
BUILT ?= .build/release
PHASE_LINKS := analyzer detector restorer builder exporter creator rebaser

install: build install-built

install-built:
	@bash scripts/install.sh install "$(BUILT)" "$(DESTDIR)$(PREFIX)" $(PHASE_LINKS)

uninstall:
	@bash scripts/install.sh uninstall "$(BUILT)" "$(DESTDIR)$(PREFIX)" $(PHASE_LINKS)

# Regenerates the profiles compiled into the binary from profiles/*.json.
profiles:
	bash scripts/embed-profiles.sh

clean:
	rm -rf .build .build-fuzz
