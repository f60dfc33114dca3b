import numpy as np
import pytest
import torch

from pcattn.data.errors import DataFormatError
from pcattn.data.io import read_cloud, read_off, read_rows

from datafixtures import CUBE_V, REALDATA, cloud_rows, needs_realdata, write_off, write_rows


def test_read_off_standard_and_broken_header_give_the_same_mesh(tmp_path):
    a = read_off(write_off(tmp_path / "a.off"))
    b = read_off(write_off(tmp_path / "b.off", broken_header=True))
    for v, f in (a, b):
        np.testing.assert_array_equal(v, CUBE_V)
        assert f.shape == (12, 3)  # 6 quads -> 12 triangles
        assert f.min() == 0 and f.max() == 7
    np.testing.assert_array_equal(a[1], b[1])


def test_read_off_comments_blank_lines_and_counts_with_spaces(tmp_path):
    p = tmp_path / "c.off"
    p.write_text("OFF 3 1 0\n# a comment\n\n0 0 0\n1 0 0 # trailing\n0 1 0\n3 0 1 2 255 0 0\n")
    v, f = read_off(p)
    assert v.shape == (3, 3) and f.tolist() == [[0, 1, 2]]


@pytest.mark.parametrize("text, needle", [
    ("OFF\n4 1 0\n0 0 0\n1 0 0\n0 1 0\n", "promises 4 vertices"),
    ("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "promises 2 faces"),
    ("OFF\n3 1 0\n0 0 0\n1 0\n0 1 0\n3 0 1 2\n", "line 4"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n", "vertex 9"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1\n", "line 6"),
    ("OFF\nthree 1 0\n", "line 2"),
    ("ply\nformat ascii 1.0\n", "not an OFF file"),
])
def test_read_off_errors_name_the_file_and_the_problem(tmp_path, text, needle):
    p = tmp_path / "bad.off"
    p.write_text(text)
    with pytest.raises(DataFormatError) as err:
        read_off(p)
    assert str(p) in str(err.value) and needle in str(err.value)


def test_read_rows_reports_the_line_of_a_short_row(tmp_path):
    rows = cloud_rows(20, 0)
    p = write_rows(tmp_path / "r.txt", rows)
    np.testing.assert_allclose(read_rows(p, min_columns=6), rows, atol=1e-6)
    lines = p.read_text().splitlines()
    lines[12] = ",".join(lines[12].split(",")[:5])
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"r\.txt, line 13: expected 6 columns, found 5"):
        read_rows(p, min_columns=6)


def test_read_rows_too_few_columns_everywhere_and_non_numbers(tmp_path):
    p = write_rows(tmp_path / "five.txt", cloud_rows(5, 0)[:, :5])
    with pytest.raises(DataFormatError, match="line 1: expected 6 columns, found 5"):
        read_rows(p, min_columns=6)
    p.write_text("1 2 3\n4 five 6\n")
    with pytest.raises(DataFormatError, match="line 2: not a row of numbers"):
        read_rows(p)


def test_read_rows_whitespace_files_comments_blanks_count_line_and_ragged_rows(tmp_path):
    p = tmp_path / "w.xyz"
    p.write_text("# x y z\n\n1 2 3  # first\n\t4.5e1\t-6 7\n\n-0.25 8 9e-3\n")
    want = np.array([[1, 2, 3], [45, -6, 7], [-0.25, 8, 0.009]], dtype=np.float64)
    np.testing.assert_array_equal(read_rows(p), want)
    p.write_text("3\n1 2 3\n4 5 6\n7 8 9\n")  # .pts: the count first
    np.testing.assert_array_equal(read_rows(p, skip_count_line=True),
                                  np.arange(1, 10, dtype=np.float64).reshape(3, 3))
    p.write_text("1 2 3\n4 5 6\n7 8\n")
    with pytest.raises(DataFormatError, match=r"w\.xyz, line 3: expected 3 columns, found 2"):
        read_rows(p)
    p.write_text("1 2\n3 4\n")
    with pytest.raises(DataFormatError, match="line 1: expected 3 columns, found 2"):
        read_rows(p)
    p.write_text("# nothing\n\n")
    with pytest.raises(DataFormatError, match="no rows of numbers"):
        read_rows(p)


def _o3d_cloud(xyz, nrm):
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz))
    if nrm is not None:
        pcd.normals = o3d.utility.Vector3dVector(nrm)
    return pcd


@pytest.mark.parametrize("suffix, normals", [(".ply", True), (".pcd", True), (".xyz", False),
                                             (".xyzn", True), (".pts", False)])
def test_read_cloud_point_formats_through_open3d_writers(tmp_path, suffix, normals):
    import open3d as o3d

    rows = cloud_rows(30, 3)
    p = tmp_path / f"c{suffix}"
    o3d.io.write_point_cloud(str(p), _o3d_cloud(rows[:, :3], rows[:, 3:6]))
    data = read_cloud(p)
    assert data.pos.dtype == torch.float32 and data.pos.shape == (30, 3)
    np.testing.assert_allclose(data.pos.numpy(), rows[:, :3], atol=1e-4)
    if normals:
        np.testing.assert_allclose(data.x.numpy(), rows[:, 3:6], atol=1e-4)
    else:
        assert data.x is None


def test_read_cloud_txt_with_and_without_normals(tmp_path):
    rows = cloud_rows(25, 1)
    d6 = read_cloud(write_rows(tmp_path / "n.txt", rows))
    np.testing.assert_allclose(d6.x.numpy(), rows[:, 3:6], atol=1e-5)
    d3 = read_cloud(write_rows(tmp_path / "p.txt", rows[:, :3], sep=" "))
    assert d3.x is None and d3.pos.shape == (25, 3)


def test_read_cloud_samples_meshes_on_their_surface(tmp_path):
    import open3d as o3d

    data = read_cloud(write_off(tmp_path / "cube.off"), num_points=500, seed=3)
    assert data.pos.shape == (500, 3) and data.x.shape == (500, 3)
    pos = data.pos.numpy()
    on_face = np.isclose(pos, 0, atol=1e-6) | np.isclose(pos, 1, atol=1e-6)
    assert on_face.any(1).all()  # every point lies on a face of the cube
    np.testing.assert_allclose(np.linalg.norm(data.x.numpy(), axis=1), 1, atol=1e-5)
    again = read_cloud(tmp_path / "cube.off", num_points=500, seed=3)
    assert torch.equal(again.pos, data.pos)
    assert not torch.equal(read_cloud(tmp_path / "cube.off", num_points=500, seed=4).pos,
                           data.pos)
    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=2.0)
    o3d.io.write_triangle_mesh(str(tmp_path / "s.obj"), mesh)
    o3d.io.write_triangle_mesh(str(tmp_path / "s.ply"), mesh)
    for name in ("s.obj", "s.ply"):
        s = read_cloud(tmp_path / name, num_points=300)
        assert s.pos.shape == (300, 3)
        np.testing.assert_allclose(s.pos.norm(dim=1).numpy(), 2.0, atol=0.05)


def test_read_cloud_errors(tmp_path):
    with pytest.raises(DataFormatError, match="unsupported file type '.las'"):
        read_cloud(tmp_path / "a.las")
    with pytest.raises(FileNotFoundError, match="a.ply"):
        read_cloud(tmp_path / "a.ply")
    (tmp_path / "junk.pcd").write_text("not a pcd\n")
    with pytest.raises(DataFormatError, match="junk.pcd: open3d read no points"):
        read_cloud(tmp_path / "junk.pcd")


@needs_realdata
def test_real_modelnet_off_files_parse_with_their_header_counts():
    files = sorted((REALDATA / "ModelNet_off").rglob("*.off"))
    assert len(files) == 8
    for f in files:
        lines = f.read_text().splitlines()
        head = (lines[0][3:].strip() or lines[1]).split()
        v, faces = read_off(f)
        assert len(v) == int(head[0])
        assert len(faces) >= int(head[1])  # polygons become several triangles
        assert faces.max() < len(v)
        data = read_cloud(f, num_points=256)
        assert torch.isfinite(data.pos).all() and data.pos.shape == (256, 3)


def _ply_bytes(tmp_path, ascii_: bool, n: int = 40) -> tuple[bytes, int]:
    """A PLY cloud with normals as open3d writes it, and where its header ends."""
    import open3d as o3d

    rows = cloud_rows(n, 2)
    p = tmp_path / "whole.ply"
    o3d.io.write_point_cloud(str(p), _o3d_cloud(rows[:, :3], rows[:, 3:6]), write_ascii=ascii_)
    data = p.read_bytes()
    return data, data.index(b"end_header\n") + len(b"end_header\n")


@pytest.mark.parametrize("ascii_", [False, True], ids=["binary", "ascii"])
@pytest.mark.parametrize("keep", [0.0, 0.5], ids=["header_only", "half"])
def test_read_cloud_refuses_a_truncated_ply(tmp_path, ascii_, keep):
    data, body = _ply_bytes(tmp_path, ascii_)
    whole = read_cloud(tmp_path / "whole.ply")
    assert whole.pos.shape == (40, 3) and whole.x.shape == (40, 3)
    cut = tmp_path / "cut.ply"
    cut.write_bytes(data[:body + int(keep * (len(data) - body))])
    with pytest.raises(DataFormatError) as err:
        read_cloud(cut)
    msg = str(err.value)
    assert str(cut) in msg and "element 'vertex' ends at row" in msg and "\n" not in msg
    row = int(msg.split("ends at row ")[1].split()[0])
    assert row == 0 if keep == 0.0 else 15 <= row <= 21


def test_read_cloud_ply_mesh_with_quads_is_sampled_on_its_surface(tmp_path):
    from datafixtures import CUBE_F

    p = tmp_path / "cube.ply"
    head = ("ply\nformat ascii 1.0\nelement vertex 8\nproperty float x\nproperty float y\n"
            "property float z\nelement face 6\nproperty list uchar int vertex_indices\n"
            "end_header\n")
    p.write_text(head + "".join(f"{a} {b} {c}\n" for a, b, c in CUBE_V)
                 + "".join("4 " + " ".join(map(str, f)) + "\n" for f in CUBE_F))
    pos = read_cloud(p, num_points=400).pos.numpy()
    on_face = np.isclose(pos, 0, atol=1e-6) | np.isclose(pos, 1, atol=1e-6)
    assert pos.shape == (400, 3) and on_face.any(1).all()
    p.write_text(head.replace("vertex 8", "vertex 9"))
    with pytest.raises(DataFormatError, match="element 'vertex' ends at row 0 of 9"):
        read_cloud(p)


@pytest.mark.parametrize("text, needle", [
    ("1 2 3\n4 nan 6\n", "coordinates hold NaN (row 1, column 1"),
    ("1 2 3\n4 5 inf\n", "coordinates hold inf"),
    ("1 2 3\n4 5 1e39\n", "coordinates hold inf (beyond float32's range?) (row 1, column 2"),
    ("1 2 3 0 0 1\n4 5 6 0 nan 1\n", "normals or features hold NaN (row 1, column 1"),
])
def test_read_cloud_non_finite_values_are_named_after_the_float32_cast(tmp_path, text, needle):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    with pytest.raises(DataFormatError) as err:
        read_cloud(p)
    assert str(p) in str(err.value) and needle in str(err.value)


def test_read_cloud_off_with_a_nan_vertex_says_nan(tmp_path):
    v = CUBE_V.copy()
    v[3, 1] = np.nan
    p = write_off(tmp_path / "nan.off", v)
    with pytest.raises(DataFormatError, match=r"nan\.off: vertex coordinates hold NaN \(row 3"):
        read_cloud(p)


def test_read_cloud_text_column_rule(tmp_path):
    rows = cloud_rows(12, 4, extra=np.arange(12.0))  # x y z nx ny nz f
    for width, x_width in ((3, None), (4, 1), (5, 2), (6, 3), (7, 4)):
        d = read_cloud(write_rows(tmp_path / f"c{width}.txt", rows[:, :width]))
        np.testing.assert_allclose(d.pos.numpy(), rows[:, :3], atol=1e-5)
        if x_width is None:
            assert d.x is None
        else:
            np.testing.assert_allclose(d.x.numpy(), rows[:, 3:width], atol=1e-5)
    p = write_rows(tmp_path / "c2.txt", rows[:, :2])
    with pytest.raises(DataFormatError, match=r"c2\.txt, line 1: expected 3 columns, found 2"):
        read_cloud(p)
