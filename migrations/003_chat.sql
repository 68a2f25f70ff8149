-- Tables for chat (issue: chat). Reserved so the three products can land in any order.
SELECT 1;
