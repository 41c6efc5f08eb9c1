import pytest

from mtlv.errors import ConfigError
from mtlv.grouping.partition import TaskGrouping, all_in_one, from_spec, one_per_label, resolve_groups

NAMES = ["Cardiomegaly", "Effusion", "opacity", "Nodule", "Emphysema"]


def test_given_groups_by_name_and_index():
    assert resolve_groups([[0, "Effusion"], ["opacity", 3, "emphysema"]], NAMES) == [[0, 1], [2, 3, 4]]


@pytest.mark.parametrize("spec, fragment", [
    ([[0, 1], [2, 3]], "Emphysema"),                      # missing label named
    ([[0, 1, 2], [2, 3, 4]], "'opacity' appears in group 0 and group 1"),
    ([[0, 1, "Pneumonia"], [2, 3, 4]], "unknown label 'Pneumonia'"),
    ([[0, 1, 9], [2, 3, 4]], "label index 9"),
])
def test_given_groups_errors_name_the_label(spec, fragment):
    with pytest.raises(ConfigError, match="clustering.groups") as err:
        resolve_groups(spec, NAMES)
    assert fragment in str(err.value)


def test_job_labels_per_placement(tmp_path):
    heads = from_spec([[3, 0], [1, 2, 4]], NAMES, "heads")
    cols, head_cols = heads.job_labels(None)
    assert cols == [3, 0, 1, 2, 4] and head_cols == [[0, 1], [2, 3, 4]]
    models = from_spec([[3, 0], [1, 2, 4]], NAMES, "models")
    assert models.job_labels(1) == ([1, 2, 4], [[0, 1, 2]])
    with pytest.raises(ConfigError, match="group_index"):
        models.job_labels(None)
    path = models.save(tmp_path / "groups.yaml")
    assert TaskGrouping.load(path) == models
    assert all_in_one(NAMES).num_groups == 1 and one_per_label(NAMES).num_groups == 5
