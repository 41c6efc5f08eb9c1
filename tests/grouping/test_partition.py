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


def test_an_empty_group_is_an_error_not_dropped():
    """Before: [[0,1],[],[2,3,4]] silently became 2 groups."""
    with pytest.raises(ConfigError, match="clustering.groups: group 1 is empty"):
        resolve_groups([[0, 1], [], [2, 3, 4]], NAMES, given=True)


YEARS = ["1", "2", "2023", "x"]  # label names that are numbers (sorted as text)


def test_numbers_that_are_other_labels_names_are_an_error_saying_how_to_quote():
    """Before: 2023 gave 'label index 2023 ... out of range' with no hint; [[1,2],...] silently took indices
    1 and 2, the labels '2' and '2023'."""
    with pytest.raises(ConfigError) as err:
        resolve_groups([[2023, "x"], [1, 2]], YEARS, given=True)
    assert str(err.value) == (
        "clustering.groups: 2023 in group 0 reads as label index 2023, out of range 0..3, but a label is named "
        "'2023'; to mean a label by its name, quote it: on a shell command line "
        "'clustering.groups=[[\"2023\",\"1\"],[...]]' (single quotes around the whole override for the shell, "
        "double quotes around each name for Hydra), in a YAML file [[\"2023\", \"1\"], ...]")
    with pytest.raises(ConfigError, match=r"1 in group 1 reads as label index 1 \('2'\), but a label is named '1'"):
        resolve_groups([["2023", "x"], [1, 2]], YEARS, given=True)
    with pytest.raises(ConfigError, match=r"label index 7 in group 1 is out of range 0..3; label names that are "
                                          r"numbers must be quoted \(to mean a label by its name, quote it"):
        resolve_groups([["2023", "x"], [0, 7]], YEARS, given=True)
    assert resolve_groups([["2023", "x"], ["1", "2"]], YEARS, given=True) == [[2, 3], [0, 1]]
    assert resolve_groups([[2, 3], [0, 1]], YEARS) == [[2, 3], [0, 1]]  # MTLV's own index lists: indices


def test_numeric_label_names_quoted_on_the_command_line_reach_the_groups_as_names():
    """What the error tells users to type is what works: Hydra keeps double-quoted numbers as strings."""
    from mtlv.config import compose

    cfg = compose(["arch=gmhl", "clustering=given", 'clustering.groups=[["2023",x],["1","2"]]'])
    assert resolve_groups(cfg.clustering.groups, YEARS, given=True) == [[2, 3], [0, 1]]
