"""Current traces as the instruments export them (meterlab.power.trace): every format and its header
variants, the normalised .npz, and errors that name the file, the line and what is wrong (the file
left as it was)."""
import numpy as np
import pytest

from meterlab.power.trace import TraceError, load_trace, read_trace, save_trace

PPK2_HEADERS = ["Timestamp(ms),Current(uA)", "Timestamp(ms),Current(uA),D0-D7",
                "Timestamp(ms),Current(uA),D0,D1,D2,D3,D4,D5,D6,D7", "Timestamp(ms),Current(uA),Bits"]


@pytest.mark.parametrize("header", PPK2_HEADERS)
def test_a_ppk2_export_with_or_without_its_digital_channels(tmp_path, header):
    extra = {"Timestamp(ms),Current(uA)": "", "Timestamp(ms),Current(uA),D0-D7": ",00100000",
             "Timestamp(ms),Current(uA),Bits": ",00100000"}.get(header, ",0,0,1,0,0,0,0,0")
    path = tmp_path / "ppk2.csv"
    path.write_text(header + "\n" + "".join(f"{k * 0.01:.2f},{1000 + k}{extra}\n" for k in range(100)) + "\n")
    trace = read_trace(path)
    assert trace.source_format == "ppk2" and trace.samples == 100 and trace.file_name == "ppk2.csv"
    assert trace.times_s[1] == pytest.approx(1e-5) and trace.current_a[0] == pytest.approx(1e-3)
    assert trace.sample_rate_hz == pytest.approx(100_000)
    assert trace.duration_s == pytest.approx(99e-5)


def test_a_joulescope_csv_with_comment_lines_and_its_headerless_ui_0x_export(tmp_path):
    path = tmp_path / "js.csv"
    path.write_text("#Joulescope UI\n#time,current,voltage,power,charge,energy\n"
                    + "".join(f"{k * 0.001:.3f},{0.002:e},3.3,{0.0066:e},0,0\n" for k in range(1001)))
    trace = read_trace(path)
    assert trace.source_format == "joulescope" and trace.samples == 1001
    assert trace.mean_current_a == pytest.approx(0.002) and trace.charge_c == pytest.approx(0.002)
    old = tmp_path / "js0.csv"
    old.write_text("".join(f"{k * 0.5:.8f},{k * 1e-3:.4e},3.3000\n" for k in range(3)))
    assert read_trace(old, "joulescope").current_a.tolist() == pytest.approx([0, 1e-3, 2e-3])
    with pytest.raises(TraceError, match="give --format joulescope"):
        read_trace(old)


@pytest.mark.parametrize("header, time_scale, current_scale", [
    ("time_s,current_a", 1, 1), ("time_ms,current_mA", 1e-3, 1e-3), ("Time_us,Current_uA", 1e-6, 1e-6),
    ("time_ms,bus_voltage_v,current_ma", 1e-3, 1e-3),  # an INA219 logger: mA, and its bus voltage too
])
def test_a_plain_csv_names_its_units(tmp_path, header, time_scale, current_scale):
    path = tmp_path / "plain.csv"
    columns = header.split(",")
    rows = [",".join("3.3" if "voltage" in c else str(k if c.lower().startswith("time") else 5 * k) for c in columns)
            for k in range(1, 5)]
    path.write_text(header + "\r\n" + "\r\n".join(rows) + "\r\n")
    trace = read_trace(path)
    assert trace.source_format == "csv"
    assert trace.times_s.tolist() == pytest.approx([k * time_scale for k in range(1, 5)])
    assert trace.current_a.tolist() == pytest.approx([5 * k * current_scale for k in range(1, 5)])


@pytest.mark.parametrize("text, fmt, message", [
    ("", "auto", r"empty\.csv: empty file"),
    ("time,current\n0,1\n1,2\n", "auto", r"line 1: header 'time,current' is not"),
    ("Timestamp(ms),Current(uA)\n", "auto", "no samples after the header"),
    ("Timestamp(ms),Current(uA)\n0,1\n0.01,abc\n", "auto", r"line 3: column 2 is not a number: 'abc'"),
    ("Timestamp(ms),Current(uA)\n0,1\n0.01\n", "auto", r"line 3: 1 columns, expected at least 2"),
    ("time_s,current_a\n0,1\n2,1\n1,1\n", "auto", r"line 4: time does not increase: 1 after 2"),
    ("time_s,current_a\n0,1\n1,nan\n", "auto", r"line 3: a time or current that is not a finite number"),
    ("time_s,current_a\n0,1\n", "auto", "one sample"),
    ("time_s,current_a\n0,1\n1,2\n", "ppk2", r"is not a PPK2 export's header"),
    ("time_s,current_a\n0,1\n1,2\n", "jls", "unknown format 'jls'"),
])
def test_errors_name_the_file_the_line_and_what_is_wrong(tmp_path, text, fmt, message):
    path = tmp_path / "empty.csv"
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        read_trace(path, fmt)
    assert path.read_text() == text


def test_binary_exports_are_refused_with_what_to_do(tmp_path):
    jls = tmp_path / "capture.jls"
    jls.write_bytes(b"\xd3tagfmt \x00\x00\x1a\x1c" + bytes(100))
    with pytest.raises(TraceError, match="pyjls"):
        read_trace(jls)
    session = tmp_path / "capture.ppk2"
    session.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(TraceError, match="export CSV from the app"):
        read_trace(session)
    with pytest.raises(TraceError, match="cannot read"):
        read_trace(tmp_path / "missing.csv")


def test_a_long_read_reports_its_progress(tmp_path, monkeypatch):
    from meterlab.power import trace as module

    monkeypatch.setattr(module, "_BLOCK_LINES", 100)
    path = tmp_path / "long.csv"
    np.savetxt(path, np.column_stack((np.arange(1000) * 1e-3, np.ones(1000))), fmt="%.3f,%.1f",
               header="time_s,current_ma", comments="")
    ticks = iter(range(0, 10_000))  # a clock a second on each look
    heard = []
    trace = read_trace(path, progress=lambda done, total: heard.append((done, total)), clock=lambda: next(ticks))
    assert trace.samples == 1000
    assert len(heard) == 10 and heard[-1] == (path.stat().st_size, path.stat().st_size)
    quiet = []
    read_trace(path, progress=lambda done, total: quiet.append(done), clock=lambda: 0.0)
    assert quiet == []  # a quick read says nothing


def test_the_normalised_trace_round_trips(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time_ms,current_ua\n0,10\n1,20\n2,30\n")
    trace = read_trace(path)
    save_trace(trace, tmp_path / "t.npz")
    again = load_trace(tmp_path / "t.npz")
    assert again.times_s.tolist() == trace.times_s.tolist() and again.current_a.tolist() == trace.current_a.tolist()
    assert (again.source_format, again.file_name) == ("csv", "t.csv")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(TraceError, match="not a trace saved by"):
        load_trace(tmp_path / "other.npz")
