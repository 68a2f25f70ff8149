-- Tables for activity feeds (issue: feeds). Reserved so the three products can land in any order.
SELECT 1;
