#!/usr/bin/env python3
"""Regenerates Sources/Daemon/InterfaceDescription.swift from Sources/Daemon/io.kvsupervisor.varlink."""
import pathlib
root = pathlib.Path(__file__).resolve().parent.parent / "Sources" / "Daemon"
idl = (root / "io.kvsupervisor.varlink").read_text()
(root / "InterfaceDescription.swift").write_text(
    "/// The io.kvsupervisor Varlink interface. Must equal Sources/Daemon/io.kvsupervisor.varlink\n"
    "/// byte for byte (a unit test checks): `make idl` regenerates this file from it.\n"
    "enum InterfaceDescription {\n"
    '    static let name = "io.kvsupervisor"\n'
    '    static let text = #"""\n' + idl + '"""#\n}\n')
