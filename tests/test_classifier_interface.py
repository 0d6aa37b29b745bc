"""Tests of mnets.classifier_interface.Classifier's losses against closed forms."""
import math

import pytest
import torch
import torch.nn.functional as F

from mnets.classifier_interface import Classifier
from mnets.lenet import LeNet


def _one_hot(labels, num_classes=4):
    return F.one_hot(torch.tensor(labels), num_classes).double()


def test_logit_cross_entropy_closed_form():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    targets = _one_hot([0, 3])
    expected = [-math.log(math.e ** 2 / (math.e ** 2 + 3)), math.log(4)]
    loss = Classifier.logit_cross_entropy_loss(logits, targets, reduction='none')
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(Classifier.logit_cross_entropy_loss(logits, targets), loss.mean())
    torch.testing.assert_close(Classifier.logit_cross_entropy_loss(logits, targets, 'sum'), loss.sum())


def test_softmax_cross_entropy_with_soft_targets():
    logits = torch.randn(5, 4, dtype=torch.float64)
    targets = torch.softmax(torch.randn(5, 4, dtype=torch.float64), dim=1)
    per_sample = -(targets * torch.log(torch.softmax(logits, dim=1))).sum(dim=1)
    torch.testing.assert_close(Classifier.softmax_and_cross_entropy(logits, targets), per_sample.mean())
    torch.testing.assert_close(Classifier.softmax_and_cross_entropy(logits, targets, reduction='sum'),
                               per_sample.sum())
    torch.testing.assert_close(Classifier.softmax_and_cross_entropy(logits, targets, reduction_sum=True),
                               per_sample.sum())
    hard = _one_hot([0, 1, 2, 3, 0])
    torch.testing.assert_close(Classifier.softmax_and_cross_entropy(logits, hard),
                               Classifier.logit_cross_entropy_loss(logits, hard))


def test_knowledge_distillation_closed_form_and_minimum():
    logits = torch.randn(6, 4, dtype=torch.float64)
    teacher = torch.randn(6, 4, dtype=torch.float64)
    temperature = 3.0
    p = torch.softmax(teacher / temperature, dim=1)
    expected = -(p * torch.log_softmax(logits / temperature, dim=1)).sum(dim=1).mean() * temperature ** 2
    loss = Classifier.knowledge_distillation_loss(logits, teacher, T=temperature)
    torch.testing.assert_close(loss, expected)
    # The loss is minimal (the entropy of p, times T^2) when the student equals the teacher.
    at_teacher = Classifier.knowledge_distillation_loss(teacher, teacher, T=temperature)
    entropy = -(p * torch.log(p)).sum(dim=1).mean() * temperature ** 2
    torch.testing.assert_close(at_teacher, entropy)
    assert loss > at_teacher


def test_knowledge_distillation_with_grown_output_layer():
    logits = torch.randn(3, 5, dtype=torch.float64)
    teacher = torch.randn(3, 3, dtype=torch.float64)
    mapping = [0, 2, 4]
    p = torch.zeros(3, 5, dtype=torch.float64)
    p[:, mapping] = torch.softmax(teacher / 2.0, dim=1)
    expected = -(p * torch.log_softmax(logits / 2.0, dim=1)).sum(dim=1).mean() * 4.0
    torch.testing.assert_close(Classifier.knowledge_distillation_loss(logits, teacher, mapping), expected)
    with pytest.raises(ValueError, match='target_mapping: required when logits'):
        Classifier.knowledge_distillation_loss(logits, teacher)
    with pytest.raises(ValueError, match='target_mapping: expected 3 indices'):
        Classifier.knowledge_distillation_loss(logits, teacher, [0, 1])


def test_accuracy():
    y = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert Classifier.accuracy(y, t).item() == 0.75


def test_losses_vmap_over_weight_sets():
    logits = torch.randn(3, 5, 4, dtype=torch.float64)
    targets = _one_hot([0, 1, 2, 3, 1])
    batched = torch.func.vmap(Classifier.logit_cross_entropy_loss, in_dims=(0, None))(logits, targets)
    loop = torch.stack([Classifier.logit_cross_entropy_loss(h, targets) for h in logits])
    torch.testing.assert_close(batched, loop)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r'T: expected the shape of h_Y \[2, 4\]'):
        Classifier.logit_cross_entropy_loss(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r't: expected the shape of y'):
        Classifier.accuracy(torch.zeros(2, 4), torch.zeros(3, 4))


def test_bad_reduction_raises():
    with pytest.raises(ValueError, match="reduction: expected one of .* got 'avg'"):
        Classifier.softmax_and_cross_entropy(torch.zeros(2, 4), torch.zeros(2, 4), reduction='avg')


def test_num_classes_validated():
    with pytest.raises(ValueError, match='num_classes: expected a positive int, got 0'):
        LeNet(arch='mnist_small', num_classes=0, verbose=False)
